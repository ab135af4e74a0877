"""The bench's feed corpus: F feeds of E entries each, generated deterministically per feed.

`feed(index, entries, seed, now)` returns one feed document (RSS 2.0, or Atom 1.0 for one
feed in five) as bytes, the same bytes for the same arguments in any process, so the feed
server (a separate process) and the bench agree without passing the corpus around.

Each feed is in one language (en, fr, de, ru, zh, ar, es, uk, pl, tr, ja, it or pt, declared
in the channel as publishers do) and its entries carry a title, a link, a guid, a date within
the last six hours and a 1–3 KB HTML description (paragraphs, links, emphasis, an image).
About TOPICAL_SHARE of the entries are on a topic of the shipped watchlists (Taiwan, Ukraine,
Greenland, New START), each with its own facts (names, numbers), so each is its own story;
the others are everyday news that none of them matches.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from xml.sax.saxutils import escape

__all__ = ["LANGS", "TOPICAL_SHARE", "feed", "feed_lang"]

#: The share of entries about a watched topic (the README's "realistic share", 5–10%).
TOPICAL_SHARE = 0.075

# Everyday headlines and sentences per language: nothing a shipped watchlist matches.
_NEUTRAL: dict[str, tuple[list[str], list[str]]] = {
    "en": (
        [
            "Central bank holds rates as inflation cools",
            "City council approves new tram line",
            "Storm brings flooding to coastal towns",
            "Parliament debates pension reform",
            "Tech firms report higher quarterly profits",
            "Farmers protest over fuel prices",
        ],
        [
            "Officials met on Tuesday to discuss trade, energy prices and the budget.",
            "The committee will publish its findings before the end of the month.",
            "Analysts said the decision was widely expected by the markets.",
            "Residents were advised to stay indoors until the weather improves.",
        ],
    ),
    "fr": (
        [
            "La banque centrale maintient ses taux",
            "Le conseil municipal vote le budget",
            "Grève dans les transports en Île-de-France",
            "Les prix de l'énergie reculent",
            "Le Sénat adopte la réforme des retraites",
            "Tempête sur la côte atlantique",
        ],
        [
            "Les ministres se sont réunis mardi pour évoquer le commerce et l'emploi.",
            "La commission rendra ses conclusions avant la fin du mois.",
            "Les analystes jugent la décision conforme aux attentes des marchés.",
            "Les habitants sont invités à rester chez eux jusqu'à nouvel ordre.",
        ],
    ),
    "de": (
        [
            "Zentralbank lässt Leitzins unverändert",
            "Stadtrat beschließt neue Straßenbahnlinie",
            "Unwetter sorgt für Überschwemmungen",
            "Bundestag berät über Rentenreform",
            "Autobauer melden höhere Gewinne",
            "Bauern protestieren gegen Dieselpreise",
        ],
        [
            "Die Minister berieten am Dienstag über Handel, Energiepreise und den Haushalt.",
            "Der Ausschuss will seine Ergebnisse bis Monatsende vorlegen.",
            "Analysten hatten mit der Entscheidung weitgehend gerechnet.",
            "Die Anwohner wurden gebeten, in ihren Häusern zu bleiben.",
        ],
    ),
    "ru": (
        [
            "Центробанк сохранил ключевую ставку",
            "Городская дума утвердила бюджет",
            "Шторм вызвал наводнения на побережье",
            "Парламент обсудил пенсионную реформу",
            "Компании отчитались о росте прибыли",
            "Фермеры протестуют против цен на топливо",
        ],
        [
            "Министры во вторник обсудили торговлю, цены на энергию и бюджет.",
            "Комиссия опубликует свои выводы до конца месяца.",
            "Аналитики отметили, что рынок ожидал такого решения.",
            "Жителям рекомендовали оставаться дома до улучшения погоды.",
        ],
    ),
    "zh": (
        [
            "央行维持基准利率不变",
            "市议会批准新建轻轨线路",
            "暴雨导致沿海城市内涝",
            "议会审议养老金改革方案",
            "科技企业季度利润增长",
            "农民抗议燃油价格上涨",
        ],
        [
            "各国部长周二举行会议，讨论贸易、能源价格和预算问题。",
            "委员会将在月底前公布调查结果。",
            "分析人士表示，这一决定基本符合市场预期。",
            "当局建议居民在天气好转前留在室内。",
        ],
    ),
    "ar": (
        [
            "البنك المركزي يبقي على أسعار الفائدة",
            "المجلس البلدي يقر خطا جديدا للترام",
            "عاصفة تتسبب في فيضانات بالمدن الساحلية",
            "البرلمان يناقش إصلاح نظام التقاعد",
            "شركات التكنولوجيا تعلن أرباحا أعلى",
            "المزارعون يحتجون على أسعار الوقود",
        ],
        [
            "اجتمع الوزراء يوم الثلاثاء لبحث التجارة وأسعار الطاقة والميزانية.",
            "ستنشر اللجنة نتائجها قبل نهاية الشهر.",
            "قال محللون إن القرار كان متوقعا على نطاق واسع.",
            "نصحت السلطات السكان بالبقاء في منازلهم حتى يتحسن الطقس.",
        ],
    ),
    "es": (
        [
            "El banco central mantiene los tipos",
            "El ayuntamiento aprueba una nueva línea de tranvía",
            "Una tormenta inunda pueblos costeros",
            "El Congreso debate la reforma de las pensiones",
        ],
        [
            "Los ministros se reunieron el martes para hablar de comercio y energía.",
            "La comisión publicará sus conclusiones antes de fin de mes.",
            "Los analistas consideran que la decisión era esperada.",
        ],
    ),
    "uk": (
        [
            "Нацбанк зберіг облікову ставку",
            "Міська рада ухвалила бюджет на рік",
            "Негода спричинила підтоплення на узбережжі",
        ],
        [
            "Міністри у вівторок обговорили торгівлю та ціни на енергію.",
            "Комісія оприлюднить висновки до кінця місяця.",
        ],
    ),
    "pl": (
        [
            "Bank centralny utrzymał stopy procentowe",
            "Rada miasta przyjęła budżet",
            "Burza spowodowała podtopienia na wybrzeżu",
        ],
        [
            "Ministrowie rozmawiali we wtorek o handlu i cenach energii.",
            "Komisja opublikuje wnioski przed końcem miesiąca.",
        ],
    ),
    "tr": (
        [
            "Merkez bankası faizi sabit tuttu",
            "Belediye meclisi yeni tramvay hattını onayladı",
            "Fırtına kıyı kasabalarında sele yol açtı",
        ],
        [
            "Bakanlar salı günü ticaret ve enerji fiyatlarını görüştü.",
            "Komisyon bulgularını ay sonundan önce açıklayacak.",
        ],
    ),
    "ja": (
        ["日銀が政策金利を据え置き", "市議会が新路線の建設を承認", "大雨で沿岸部に浸水被害"],
        [
            "閣僚らは火曜日、貿易とエネルギー価格について協議した。",
            "委員会は月末までに結論を公表する。",
        ],
    ),
    "it": (
        [
            "La banca centrale lascia invariati i tassi",
            "Il consiglio comunale approva il bilancio",
            "Maltempo, allagamenti sulla costa",
        ],
        [
            "I ministri si sono riuniti martedì per discutere di commercio ed energia.",
            "La commissione pubblicherà le conclusioni entro fine mese.",
        ],
    ),
    "pt": (
        [
            "Banco central mantém a taxa de juros",
            "Câmara aprova nova linha de metrô",
            "Temporal provoca alagamentos no litoral",
        ],
        [
            "Os ministros se reuniram na terça-feira para discutir comércio e energia.",
            "A comissão divulgará suas conclusões até o fim do mês.",
        ],
    ),
}

# Headlines on a watched topic, per language; {n} is a number and {w} a made-up name, so that
# each is its own story.
_TOPICAL: dict[str, list[str]] = {
    "en": [
        "Taiwan's navy tracks {n} ships near {w}",
        "Ukraine says {n} drones downed over {w}",
        "Greenland's government rejects {w} purchase talk",
        "New START expiry: {w} urges talks",
        "Kyiv reports {n} strikes on {w} grid",
    ],
    "fr": [
        "Taïwan : Pékin multiplie les manœuvres près de {w}",
        "Ukraine : {n} drones abattus au-dessus de {w}",
        "Le Groenland élit {w} à sa tête",
    ],
    "de": [
        "Chinesische Manöver in der Taiwanstraße bei {w}",
        "Ukraine meldet {n} Drohnenangriffe auf {w}",
        "Kopenhagen und die Grönlandfrage: {w}",
    ],
    "ru": [
        "Тайвань провёл учения у побережья {w}",
        "Удары по энергосистеме Украины: {n} в {w}",
        "США расширят консульство в Нууке, сообщил {w}",
    ],
    "zh": [
        "台湾海峡局势持续紧张 {w}报告{n}艘舰船",
        "乌克兰称击落{n}架无人机 {w}",
        "格陵兰自治政府回应{w}",
    ],
    "ar": ["أوكرانيا تعلن إسقاط {n} مسيرة فوق {w}", "تايوان ترصد {n} سفينة قرب {w}"],
    "es": [
        "Taiwán denuncia {n} incursiones aéreas cerca de {w}",
        "Groenlandia refuerza su vigilancia ártica en {w}",
    ],
    "uk": [
        "Тайвань посилює протиповітряну оборону біля {w}",
        "Україна отримала {n} систем від {w}",
    ],
    "pl": ["Chińskie okręty w pobliżu Tajwanu: {n} jednostek przy {w}"],
    "tr": ["Ukrayna'ya {n} milyonluk yardım paketi: {w}"],
    "ja": ["ウクライナ東部で{n}件の攻撃 {w}"],
    "it": ["Il presidente taiwanese incontra {w}"],
    "pt": ["Exportações para Taiwã batem recorde em {w}"],
}

#: Languages in the order feeds are given them (feed i speaks LANGS[i % len(LANGS)]).
LANGS = ("en", "fr", "de", "ru", "zh", "ar", "es", "uk", "pl", "tr", "ja", "it", "pt")
_ALPHABET = {
    "ru": "абвгдежзиклмнопрстуфхцчшы",
    "uk": "абвгдежзиклмнопрстуфхцчшї",
    "ar": "ابتثجحخدذرزسشصضطظعغفقكلمن",
    "zh": "".join(chr(c) for c in range(0x4E00 + 200, 0x4E00 + 420)),
    "ja": "".join(chr(c) for c in range(0x30A2, 0x30F3)),
}
_LATIN = "abcdefgilmnoprstvz"  # no k, u: no Nuuk*, Kyiv*, Ukrain* by chance


def feed_lang(index: int) -> str:
    return LANGS[index % len(LANGS)]


def _name(rng: random.Random, lang: str) -> str:
    """A made-up proper name in the language's script (never a watched word)."""
    alphabet = _ALPHABET.get(lang, _LATIN)
    size = rng.randint(2, 4) if lang in ("zh", "ja") else rng.randint(5, 9)
    word = "".join(rng.choice(alphabet) for _ in range(size))
    return word if lang in ("zh", "ja", "ar") else word.capitalize()


def _description(rng: random.Random, lang: str, lead: str) -> str:
    """1–3 KB of HTML: a lead that names this story's facts, then paragraphs of filler."""
    sentences = _NEUTRAL[lang][1]
    target = rng.randint(1000, 3000)
    parts = [f"<p><b>{escape(lead)}</b> {escape(rng.choice(sentences))}</p>"]
    size = len(parts[0].encode())
    while size < target:
        words = " ".join(_name(rng, lang) for _ in range(3))
        paragraph = (
            f"<p>{escape(rng.choice(sentences))} {words}. "
            f'<a href="https://news.example/{lang}/{rng.randrange(10**6)}">{escape(words)}</a> '
            f"<em>{escape(rng.choice(sentences))}</em></p>"
        )
        if rng.random() < 0.1:
            paragraph += f'<img src="https://img.example/{rng.randrange(10**6)}.jpg" alt="">'
        parts.append(paragraph)
        size += len(paragraph.encode())
    return "".join(parts)


def _entry(rng: random.Random, index: int, number: int, lang: str) -> tuple[str, str, str]:
    """(title, lead, description) of one entry."""
    facts = {"n": str(rng.randint(2, 900)), "w": _name(rng, lang)}
    if rng.random() < TOPICAL_SHARE:
        title = rng.choice(_TOPICAL[lang]).format(**facts)
    else:
        title = f"{rng.choice(_NEUTRAL[lang][0])} ({facts['w']})"
    lead = f"{facts['w']} {facts['n']} {_name(rng, lang)} {_name(rng, lang)} {index}-{number}"
    return title, lead, _description(rng, lang, lead)


def feed(index: int, entries: int, seed: int, now: datetime | None = None) -> bytes:
    """Feed `index` of the corpus as bytes (UTF-8 XML); see the module doc."""
    rng = random.Random(f"{seed}:{index}")
    lang = feed_lang(index)
    now = now or datetime.now(UTC)
    atom = index % 5 == 4
    items = []
    for number in range(entries):
        title, _, description = _entry(rng, index, number, lang)
        link = f"https://news{index % 97}.example/{lang}/{index}/{number}"
        guid = f"urn:bench:{seed}:{index}:{number}"
        when = now - timedelta(minutes=number * 7 + rng.randint(0, 6))
        if atom:
            items.append(
                f'<entry><title>{escape(title)}</title><link href="{link}"/><id>{guid}</id>'
                f"<updated>{when.strftime('%Y-%m-%dT%H:%M:%SZ')}</updated>"
                f'<summary type="html">{escape(description)}</summary></entry>'
            )
        else:
            body = (
                f"<![CDATA[{description}]]>" if number % 2 else escape(description)
            )  # publishers do both
            items.append(
                f"<item><title>{escape(title)}</title><link>{link}</link>"
                f'<guid isPermaLink="false">{guid}</guid>'
                f"<pubDate>{format_datetime(when)}</pubDate>"
                f"<description>{body}</description></item>"
            )
    if atom:
        doc = (
            '<?xml version="1.0" encoding="utf-8"?>'
            f'<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="{lang}">'
            f"<title>Bench feed {index}</title><id>urn:bench:{seed}:{index}</id>"
            f'<link href="https://news{index % 97}.example/{lang}/{index}"/>'
            f"<updated>{now.strftime('%Y-%m-%dT%H:%M:%SZ')}</updated>" + "".join(items) + "</feed>"
        )
    else:
        doc = (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>Bench feed {index}</title>"
            f"<link>https://news{index % 97}.example/{lang}/{index}</link>"
            f"<description>Bench feed {index}</description><language>{lang}</language>"
            + "".join(items)
            + "</channel></rss>"
        )
    return doc.encode()
