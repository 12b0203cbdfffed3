"""Question and statement templates for the five relations, in all 22 languages.

Labels are inserted exactly as CLDR gives them: nominative, uninflected, without an article.
So every template is built to stay grammatical around a bare name:
- where a language would inflect the name, add an article or attach a suffix to it, the name
  stands in apposition to a generic noun ("des Landes Japan", "страны Япония",
  "Japonya ülkesinin", "জাপান দেশের") or after a colon ("hivatalos nyelve: japán");
- where an article before the object would depend on its gender or first sound (French l'/le,
  Dutch de/het, Greek ο/η/το), the verb is "is called" ("s'appelle", "heet", "ονομάζεται") or
  the construction needs no article ("on parle officiellement japonais");
- Japanese, Korean and Chinese particles used here do not depend on the name (의, の, 的).
A template that is not a word-for-word rendering of the English one carries an English gloss.
"""

from __future__ import annotations

from interp.errors import DataError
from interp.languages import ALL

# Relation name -> Wikidata property id.
RELATIONS: dict[str, str] = {
    "capital": "P36",
    "currency": "P38",
    "official language": "P37",
    "continent": "P30",
    "country": "P17",
}

QUESTION_TEMPLATES: dict[str, dict[str, str]] = {
    "capital": {
        "en": "What is the capital of {subject}?",
        "de": "Was ist die Hauptstadt des Landes {subject}?",  # ... of the country Japan?
        "id": "Apa ibu kota {subject}?",
        "pt": "Qual é a capital do país {subject}?",  # ... of the country Japan?
        "ar": "ما هي عاصمة {subject}؟",
        "bn": "{subject} দেশের রাজধানী কোন শহর?",  # Which city is the capital of the country Japan?
        "sw": "Mji mkuu wa {subject} ni upi?",  # The capital of Japan is which one?
        "es": "¿Cuál es la capital de {subject}?",
        # Which city is the capital of the country Japan?
        "ru": "Какой город является столицей страны {subject}?",
        "fr": "Quelle est la capitale du pays {subject} ?",  # ... of the country Japan?
        "ja": "{subject}の首都はどこですか？",  # Where is the capital of Japan?
        "zh": "{subject}的首都是哪座城市？",  # Which city is the capital of Japan?
        "ca": "Quina és la capital del país {subject}?",  # ... of the country Japan?
        "el": "Ποια είναι η πρωτεύουσα της χώρας {subject};",  # ... of the country Japan?
        "fa": "پایتخت {subject} کجاست؟",  # Where is the capital of Japan?
        "he": "מהי בירת {subject}?",
        "hu": "Mi {subject} fővárosa?",
        "ko": "{subject}의 수도는 어디입니까?",  # Where is the capital of Japan?
        "nl": "Wat is de hoofdstad van het land {subject}?",  # ... of the country Japan?
        # Where is the capital of the country Japan?
        "tr": "{subject} ülkesinin başkenti neresidir?",
        # Which city is the capital of the country Japan?
        "uk": "Яке місто є столицею країни {subject}?",
        "vi": "Thủ đô của {subject} là thành phố nào?",  # The capital of Japan is which city?
    },
    "currency": {
        "en": "What is the currency of {subject}?",
        # Which currency does the country Japan have?
        "de": "Welche Währung hat das Land {subject}?",
        "id": "Apa mata uang {subject}?",
        "pt": "Qual é a moeda do país {subject}?",  # ... of the country Japan?
        "ar": "ما هي عملة {subject}؟",
        "bn": "{subject} দেশের মুদ্রা কী?",  # What is the currency of the country Japan?
        "sw": "Sarafu ya {subject} ni ipi?",  # The currency of Japan is which one?
        "es": "¿Cuál es la moneda de {subject}?",
        # Which currency is used in the country Japan?
        "ru": "Какая валюта используется в стране {subject}?",
        "fr": "Quelle est la monnaie du pays {subject} ?",  # ... of the country Japan?
        "ja": "{subject}の通貨は何ですか？",
        "zh": "{subject}的货币是什么？",
        "ca": "Quina és la moneda del país {subject}?",  # ... of the country Japan?
        # What is the currency of the country Japan called?
        "el": "Πώς ονομάζεται το νόμισμα της χώρας {subject};",
        "fa": "واحد پول {subject} چیست؟",  # What is the money unit of Japan?
        "he": "מהו המטבע של {subject}?",
        "hu": "Mi {subject} hivatalos pénzneme?",  # What is Japan's official currency?
        "ko": "{subject}의 통화는 무엇입니까?",
        "nl": "Wat is de munteenheid van het land {subject}?",  # ... of the country Japan?
        "tr": "{subject} ülkesinin para birimi nedir?",  # ... of the country Japan?
        # Which currency is used in the country Japan?
        "uk": "Яка валюта використовується в країні {subject}?",
        "vi": "Đơn vị tiền tệ của {subject} là gì?",
    },
    "official language": {
        "en": "What is the official language of {subject}?",
        # Which official language does the country Japan have?
        "de": "Welche Amtssprache hat das Land {subject}?",
        "id": "Apa bahasa resmi {subject}?",
        "pt": "Qual é a língua oficial do país {subject}?",  # ... of the country Japan?
        "ar": "ما هي اللغة الرسمية في {subject}؟",  # ... in Japan?
        "bn": "{subject} দেশের সরকারি ভাষা কী?",  # ... of the country Japan?
        "sw": "Lugha rasmi ya {subject} ni ipi?",  # The official language of Japan is which one?
        "es": "¿Cuál es el idioma oficial de {subject}?",
        # Which language is official in the country Japan?
        "ru": "Какой язык является официальным в стране {subject}?",
        "fr": "Quelle est la langue officielle du pays {subject} ?",  # ... of the country Japan?
        "ja": "{subject}の公用語は何ですか？",
        "zh": "{subject}的官方语言是什么？",
        "ca": "Quina és la llengua oficial del país {subject}?",  # ... of the country Japan?
        "el": "Ποια είναι η επίσημη γλώσσα της χώρας {subject};",  # ... of the country Japan?
        "fa": "زبان رسمی {subject} چیست؟",
        "he": "מהי השפה הרשמית של {subject}?",
        "hu": "Mi {subject} hivatalos nyelve?",
        "ko": "{subject}의 공용어는 무엇입니까?",
        "nl": "Wat is de officiële taal van het land {subject}?",  # ... of the country Japan?
        "tr": "{subject} ülkesinin resmî dili nedir?",  # ... of the country Japan?
        # Which language is official in the country Japan?
        "uk": "Яка мова є офіційною в країні {subject}?",
        "vi": "Ngôn ngữ chính thức của {subject} là gì?",
    },
    "continent": {
        "en": "On which continent is {subject} located?",
        "de": "Auf welchem Kontinent liegt das Land {subject}?",  # ... does the country Japan lie?
        "id": "Di benua manakah {subject} terletak?",
        "pt": "Em que continente fica o país {subject}?",  # ... is the country Japan?
        "ar": "في أي قارة تقع دولة {subject}؟",  # On which continent lies the state of Japan?
        "bn": "{subject} দেশটি কোন মহাদেশে অবস্থিত?",  # On which continent is the country Japan?
        "sw": "{subject} iko katika bara gani?",
        "es": "¿En qué continente está {subject}?",
        "ru": "На каком континенте находится страна {subject}?",  # ... is the country Japan?
        "fr": "Sur quel continent se trouve le pays {subject} ?",  # ... is the country Japan?
        "ja": "{subject}はどの大陸にありますか？",
        "zh": "{subject}位于哪个大洲？",
        "ca": "A quin continent es troba el país {subject}?",  # ... is the country Japan?
        "el": "Σε ποια ήπειρο βρίσκεται η χώρα {subject};",  # ... is the country Japan?
        "fa": "{subject} در کدام قاره قرار دارد؟",
        "he": "באיזו יבשת נמצאת מדינת {subject}?",  # On which continent is the state of Japan?
        "hu": "Melyik kontinensen található {subject}?",
        "ko": "{subject}의 소속 대륙은 어디입니까?",  # Which is the continent Japan belongs to?
        "nl": "Op welk continent ligt het land {subject}?",  # ... does the country Japan lie?
        # On which continent does the country Japan lie?
        "tr": "{subject} ülkesi hangi kıtada yer alır?",
        "uk": "На якому континенті розташована країна {subject}?",  # ... is the country Japan?
        "vi": "{subject} nằm ở châu lục nào?",
    },
    "country": {
        "en": "In which country is {subject} located?",
        "de": "In welchem Land liegt die Stadt {subject}?",  # ... does the city Osaka lie?
        "id": "Di negara manakah {subject} terletak?",
        "pt": "Em que país fica {subject}?",
        "ar": "في أي دولة تقع مدينة {subject}؟",  # In which country lies the city of Osaka?
        "bn": "{subject} শহরটি কোন দেশে অবস্থিত?",  # In which country is the city Osaka?
        "sw": "{subject} iko katika nchi gani?",
        "es": "¿En qué país está {subject}?",
        "ru": "В какой стране находится город {subject}?",  # ... is the city Osaka?
        "fr": "Dans quel pays se trouve {subject} ?",
        "ja": "{subject}はどの国にありますか？",
        "zh": "{subject}位于哪个国家？",
        "ca": "A quin país es troba {subject}?",
        "el": "Σε ποια χώρα βρίσκεται η πόλη {subject};",  # ... is the city Osaka?
        "fa": "{subject} در کدام کشور قرار دارد؟",
        "he": "באיזו מדינה נמצאת העיר {subject}?",  # ... is the city Osaka?
        "hu": "Melyik országban található {subject}?",
        "ko": "{subject}의 소속 국가는 어디입니까?",  # Which is the country Osaka belongs to?
        "nl": "In welk land ligt {subject}?",
        "tr": "{subject} şehri hangi ülkede yer alır?",  # In which country does the city Osaka lie?
        "uk": "У якій країні розташоване місто {subject}?",  # ... is the city Osaka?
        "vi": "{subject} nằm ở quốc gia nào?",
    },
}

STATEMENT_TEMPLATES: dict[str, dict[str, str]] = {
    "capital": {
        "en": "The capital of {subject} is {object}.",
        "de": "Die Hauptstadt des Landes {subject} ist {object}.",  # ... of the country Japan ...
        "id": "Ibu kota {subject} adalah {object}.",
        "pt": "A capital do país {subject} é {object}.",  # ... of the country Japan ...
        "ar": "عاصمة {subject} هي {object}.",
        "bn": "{subject} দেশের রাজধানী {object}।",  # ... of the country Japan ...
        "sw": "Mji mkuu wa {subject} ni {object}.",
        "es": "La capital de {subject} es {object}.",
        "ru": "Столица страны {subject} — {object}.",  # The capital of the country Japan: Tokyo.
        "fr": "La capitale du pays {subject} est {object}.",  # ... of the country Japan ...
        "ja": "{subject}の首都は{object}です。",
        "zh": "{subject}的首都是{object}。",
        "ca": "La capital del país {subject} és {object}.",  # ... of the country Japan ...
        # ... of the country Japan is the city Tokyo.
        "el": "Η πρωτεύουσα της χώρας {subject} είναι η πόλη {object}.",
        "fa": "پایتخت {subject} {object} است.",
        "he": "בירת {subject} היא {object}.",
        "hu": "{subject} fővárosa {object}.",
        "ko": "{subject}의 수도는 {object}입니다.",
        "nl": "De hoofdstad van het land {subject} is {object}.",  # ... of the country Japan ...
        # Tokyo is the capital of the country Japan.
        "tr": "{object}, {subject} ülkesinin başkentidir.",
        "uk": "Столиця країни {subject} — {object}.",  # The capital of the country Japan: Tokyo.
        "vi": "Thủ đô của {subject} là {object}.",
    },
    "currency": {
        "en": "The currency of {subject} is the {object}.",
        # ... of the country Japan is called ...
        "de": "Die Währung des Landes {subject} heißt {object}.",
        "id": "Mata uang {subject} adalah {object}.",
        # ... of the country Japan is called ...
        "pt": "A moeda do país {subject} se chama {object}.",
        "ar": "عملة {subject} هي {object}.",
        "bn": "{subject} দেশের মুদ্রা {object}।",  # ... of the country Japan ...
        "sw": "Sarafu ya {subject} ni {object}.",
        "es": "La moneda de {subject} se llama {object}.",  # ... is called ...
        "ru": "Валюта страны {subject} — {object}.",  # The currency of the country Japan: ...
        # ... of the country Japan is called ...
        "fr": "La monnaie du pays {subject} s'appelle {object}.",
        "ja": "{subject}の通貨は{object}です。",
        "zh": "{subject}的货币是{object}。",
        # ... of the country Japan is called ...
        "ca": "La moneda del país {subject} s'anomena {object}.",
        # ... of the country Japan is called ...
        "el": "Το νόμισμα της χώρας {subject} ονομάζεται {object}.",
        "fa": "واحد پول {subject} {object} است.",  # The money unit of Japan is ...
        "he": "המטבע של {subject} הוא {object}.",
        "hu": "{subject} hivatalos pénzneme: {object}.",  # Japan's official currency: ...
        "ko": "{subject}의 통화는 {object}입니다.",
        # ... of the country Japan is called ...
        "nl": "De munteenheid van het land {subject} heet {object}.",
        # ... is the currency of the country Japan.
        "tr": "{object}, {subject} ülkesinin para birimidir.",
        "uk": "Валюта країни {subject} — {object}.",  # The currency of the country Japan: ...
        "vi": "Đơn vị tiền tệ của {subject} là {object}.",
    },
    "official language": {
        "en": "The official language of {subject} is {object}.",
        "de": "Die Amtssprache des Landes {subject} ist {object}.",  # ... of the country Japan ...
        "id": "Bahasa resmi {subject} adalah bahasa {object}.",  # ... is the Japanese language.
        # ... of the country Japan is (the) Japanese.
        "pt": "A língua oficial do país {subject} é o {object}.",
        "ar": "اللغة الرسمية في {subject} هي {object}.",  # The official language in Japan is ...
        "bn": "{subject} দেশের সরকারি ভাষা {object}।",  # ... of the country Japan ...
        "sw": "Lugha rasmi ya {subject} ni {object}.",
        "es": "El idioma oficial de {subject} es el {object}.",  # ... is (the) Japanese.
        # ... of the country Japan: Japanese.
        "ru": "Официальный язык страны {subject} — {object}.",
        # In the country Japan, Japanese is officially spoken.
        "fr": "Dans le pays {subject}, on parle officiellement {object}.",
        "ja": "{subject}の公用語は{object}です。",
        "zh": "{subject}的官方语言是{object}。",
        # In the country Japan, Japanese is officially spoken.
        "ca": "Al país {subject} es parla oficialment {object}.",
        # ... of the country Japan is (the) Japanese.
        "el": "Η επίσημη γλώσσα της χώρας {subject} είναι τα {object}.",
        "fa": "زبان رسمی {subject} {object} است.",
        "he": "השפה הרשמית של {subject} היא {object}.",
        "hu": "{subject} hivatalos nyelve: {object}.",  # Japan's official language: Japanese.
        "ko": "{subject}의 공용어는 {object}입니다.",
        # ... of the country Japan is (the) Japanese.
        "nl": "De officiële taal van het land {subject} is het {object}.",
        # Japanese is the official language of the country Japan.
        "tr": "{object}, {subject} ülkesinin resmî dilidir.",
        "uk": "Офіційна мова країни {subject} — {object}.",  # ... of the country Japan: Japanese.
        "vi": "Ngôn ngữ chính thức của {subject} là {object}.",
    },
    "continent": {
        "en": "{subject} is located in {object}.",
        # The country Japan lies on the continent Asia.
        "de": "Das Land {subject} liegt auf dem Kontinent {object}.",
        "id": "{subject} terletak di benua {object}.",  # Japan lies on the continent Asia.
        # The country Japan is in Asia (every continent name is feminine).
        "pt": "O país {subject} fica na {object}.",
        # The state of Japan lies on the continent of Asia.
        "ar": "تقع دولة {subject} في قارة {object}.",
        # The country Japan is on the continent Asia.
        "bn": "{subject} দেশটি {object} মহাদেশে অবস্থিত।",
        "sw": "{subject} iko katika bara la {object}.",  # Japan is on the continent of Asia.
        "es": "{subject} está en {object}.",
        # The continent the country Japan is on: Asia.
        "ru": "Континент, на котором находится страна {subject}, — {object}.",
        # The country Japan is in Asia (every continent takes "en").
        "fr": "Le pays {subject} se trouve en {object}.",
        "ja": "{subject}は{object}にあります。",
        "zh": "{subject}位于{object}。",
        "ca": "El país {subject} es troba a {object}.",  # The country Japan is in Asia.
        # The country Japan is on the continent Asia.
        "el": "Η χώρα {subject} βρίσκεται στην ήπειρο {object}.",
        "fa": "{subject} در قاره {object} قرار دارد.",  # Japan is on the continent Asia.
        # The state of Japan is on the continent Asia.
        "he": "מדינת {subject} נמצאת ביבשת {object}.",
        # Japan is on the following continent: Asia.
        "hu": "{subject} a következő kontinensen található: {object}.",
        "ko": "{subject}의 소속 대륙은 {object}입니다.",  # The continent Japan belongs to is Asia.
        "nl": "Het land {subject} ligt in {object}.",  # The country Japan lies in Asia.
        # The country Japan lies on the continent Asia.
        "tr": "{subject} ülkesi {object} kıtasında yer alır.",
        # The continent the country Japan is on: Asia.
        "uk": "Континент, на якому розташована країна {subject}, — {object}.",
        "vi": "{subject} nằm ở {object}.",
    },
    "country": {
        "en": "{subject} is located in {object}.",
        # The city Osaka lies in the country Japan.
        "de": "Die Stadt {subject} liegt im Land {object}.",
        "id": "{subject} terletak di negara {object}.",  # Osaka lies in the country Japan.
        "pt": "{subject} fica no país {object}.",  # Osaka is in the country Japan.
        "ar": "تقع مدينة {subject} في {object}.",  # The city of Osaka lies in Japan.
        "bn": "{subject} শহরটি {object} দেশে অবস্থিত।",  # The city Osaka is in the country Japan.
        "sw": "{subject} iko nchini {object}.",  # Osaka is in the country of Japan.
        "es": "{subject} está en {object}.",
        # The city Osaka is in the country Japan.
        "ru": "Город {subject} находится в стране {object}.",
        "fr": "{subject} se trouve dans le pays {object}.",  # Osaka is in the country Japan.
        "ja": "{subject}は{object}にあります。",
        "zh": "{subject}位于{object}。",
        "ca": "{subject} es troba al país {object}.",  # Osaka is in the country Japan.
        # The city Osaka is in the country Japan.
        "el": "Η πόλη {subject} βρίσκεται στη χώρα {object}.",
        "fa": "{subject} در کشور {object} قرار دارد.",  # Osaka is in the country Japan.
        "he": "העיר {subject} נמצאת במדינת {object}.",  # The city Osaka is in the state of Japan.
        # Osaka is in the following country: Japan.
        "hu": "{subject} a következő országban található: {object}.",
        "ko": "{subject}의 소속 국가는 {object}입니다.",  # The country Osaka belongs to is Japan.
        "nl": "{subject} ligt in het land {object}.",  # Osaka lies in the country Japan.
        # The city Osaka lies in the country Japan.
        "tr": "{subject} şehri {object} ülkesinde yer alır.",
        # The city Osaka is in the country Japan.
        "uk": "Місто {subject} розташоване в країні {object}.",
        "vi": "{subject} nằm ở {object}.",
    },
}


def _template(table: dict[str, dict[str, str]], kind: str, relation: str, language: str) -> str:
    """Look up a template; name the unknown relation or language and list the known ones."""
    if relation not in table:
        raise DataError(
            f"interp.facts.templates: unknown relation {relation!r} for a {kind}. "
            f"Known relations: {', '.join(map(repr, RELATIONS))}. "
            "Fix: use one of these names (or add its templates here)"
        )
    by_language = table[relation]
    if language not in by_language:
        raise DataError(
            f"interp.facts.templates: no {kind} template for language {language!r} "
            f"(relation {relation!r}). Known languages: {' '.join(ALL)}. "
            "Fix: use one of these ISO 639-1 codes"
        )
    return by_language[language]


def _check_label(value: str, role: str, relation: str, language: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise DataError(
            f"interp.facts.templates: empty or non-string {role} label {value!r} "
            f"(relation {relation!r}, language {language!r}). Fix: pass the entity's CLDR label"
        )


# English country names that take the definite article ("the capital of the Netherlands").
_EN_THE_NAMES = frozenset(
    {
        "Bahamas",
        "Comoros",
        "Gambia",
        "Maldives",
        "Netherlands",
        "Philippines",
        "Seychelles",
        "Vatican City",
        "Isle of Man",
        "Caribbean Netherlands",
        "Czech Republic",
    }
)
_EN_THE_PREFIXES = ("United ",)
_EN_THE_SUFFIXES = (" Islands", " Republic", " Territories", " Territory", " Emirates")
# Which slot holds a country, per relation: only those names can need the article.
_COUNTRY_SLOT = {
    "capital": "subject",
    "currency": "subject",
    "official language": "subject",
    "continent": "subject",
    "country": "object",
}


def english_name(label: str) -> str:
    """An English country name as it stands inside a sentence: "the United States", "Japan"."""
    needs_the = (
        label in _EN_THE_NAMES
        or label.startswith(_EN_THE_PREFIXES)
        or label.endswith(_EN_THE_SUFFIXES)
    )
    return f"the {label}" if needs_the else label


def _fill(template: str, relation: str, language: str, **slots: str) -> str:
    slot = _COUNTRY_SLOT.get(relation)
    if language == "en" and slot in slots:
        slots[slot] = english_name(slots[slot])
    text = template.format(**slots)  # format() does not re-read braces inside inserted labels
    if language == "en":  # "the Netherlands is ..." opens a sentence
        text = text[0].upper() + text[1:]
    return text


def question(relation: str, language: str, subject: str) -> str:
    """The question asking for the object of `relation` about `subject`, in `language`."""
    template = _template(QUESTION_TEMPLATES, "question", relation, language)
    _check_label(subject, "subject", relation, language)
    return _fill(template, relation, language, subject=subject)


def statement(relation: str, language: str, subject: str, object_label: str) -> str:
    """The sentence stating that `object_label` is the `relation` of `subject`, in `language`."""
    template = _template(STATEMENT_TEMPLATES, "statement", relation, language)
    _check_label(subject, "subject", relation, language)
    _check_label(object_label, "object", relation, language)
    return _fill(template, relation, language, subject=subject, object=object_label)
