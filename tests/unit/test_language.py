"""Language guessing for feeds that do not declare one: confident or silent."""

from __future__ import annotations

import pytest

from monitor.edges.language import detect_language


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Xi et Poutine affichent un front commun face à Washington", "fr"),
        ("Die Regierung in Kopenhagen lädt zu Gesprächen über die Arktis ein", "de"),
        ("Новые переговоры о поставках зерна из Украины", "ru"),
        ("Україна отримала нову партію допомоги від партнерів", "uk"),
        ("Tayvan donanması ada açıklarında tatbikat yaptı", "tr"),
        ("格陵兰岛自治政府回应收购言论并呼吁对话", "zh"),
        ("ウクライナ情勢について政府が会見を開いた", "ja"),
        ("الحرب في أوكرانيا تدخل عامها الرابع", "ar"),
        ("Kyiv", None),  # too short to say
        ("12345 67890 !!!", None),
        ("", None),
    ],
)
def test_detect_language(text: str, expected: str | None) -> None:
    assert detect_language(text) == expected
