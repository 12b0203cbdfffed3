"""The language registry: the paper's 12 trained languages and its 10 held-out (unseen) ones."""

from __future__ import annotations

from dataclasses import dataclass

from interp.errors import DataError


@dataclass(frozen=True)
class Language:
    code: str  # ISO 639-1
    name: str  # English name
    native_name: str
    script: str  # ISO 15924
    resource: str  # "high" or "low" (the paper's grouping; unseen languages are "high"/"low" by data size too)
    role: str  # "trained" (in the paper's training set) or "unseen" (held out)

    @property
    def is_low_resource(self) -> bool:
        return self.resource == "low"


_LANGUAGES = (
    # the paper's 12 trained languages, in its order (en de id pt ar bn sw es ru fr ja zh)
    Language("en", "English", "English", "Latn", "high", "trained"),
    Language("de", "German", "Deutsch", "Latn", "high", "trained"),
    Language("id", "Indonesian", "Bahasa Indonesia", "Latn", "low", "trained"),
    Language("pt", "Portuguese", "Português", "Latn", "high", "trained"),
    Language("ar", "Arabic", "العربية", "Arab", "high", "trained"),
    Language("bn", "Bengali", "বাংলা", "Beng", "low", "trained"),
    Language("sw", "Swahili", "Kiswahili", "Latn", "low", "trained"),
    Language("es", "Spanish", "Español", "Latn", "high", "trained"),
    Language("ru", "Russian", "Русский", "Cyrl", "high", "trained"),
    Language("fr", "French", "Français", "Latn", "high", "trained"),
    Language("ja", "Japanese", "日本語", "Jpan", "high", "trained"),
    Language("zh", "Chinese", "中文", "Hans", "high", "trained"),
    # the 10 held-out languages (ca el fa he hu ko nl tr uk vi)
    Language("ca", "Catalan", "Català", "Latn", "high", "unseen"),
    Language("el", "Greek", "Ελληνικά", "Grek", "high", "unseen"),
    Language("fa", "Persian", "فارسی", "Arab", "high", "unseen"),
    Language("he", "Hebrew", "עברית", "Hebr", "high", "unseen"),
    Language("hu", "Hungarian", "Magyar", "Latn", "high", "unseen"),
    Language("ko", "Korean", "한국어", "Kore", "high", "unseen"),
    Language("nl", "Dutch", "Nederlands", "Latn", "high", "unseen"),
    Language("tr", "Turkish", "Türkçe", "Latn", "high", "unseen"),
    Language("uk", "Ukrainian", "Українська", "Cyrl", "high", "unseen"),
    Language("vi", "Vietnamese", "Tiếng Việt", "Latn", "high", "unseen"),
)

LANGUAGES: dict[str, Language] = {lang.code: lang for lang in _LANGUAGES}
TRAINED: tuple[str, ...] = tuple(lang.code for lang in _LANGUAGES if lang.role == "trained")
UNSEEN: tuple[str, ...] = tuple(lang.code for lang in _LANGUAGES if lang.role == "unseen")
ALL: tuple[str, ...] = TRAINED + UNSEEN
LOW_RESOURCE: tuple[str, ...] = tuple(code for code in TRAINED if LANGUAGES[code].is_low_resource)
HIGH_RESOURCE: tuple[str, ...] = tuple(
    code for code in TRAINED if not LANGUAGES[code].is_low_resource
)


def get(code: str) -> Language:
    """The registry entry for an ISO 639-1 code; a clear error for an unknown one."""
    try:
        return LANGUAGES[code]
    except KeyError:
        raise DataError(
            f"unknown language code {code!r}. Known codes: {' '.join(ALL)}. "
            "Fix: use one of these ISO 639-1 codes"
        ) from None


GROUPS = ("trained-high", "trained-low", "unseen")  # what `group` returns


def language_order(codes) -> list[str]:
    """Codes in the registry's order (the paper's), then unknown labels as first seen."""
    codes = list(dict.fromkeys(codes))
    known = [c for c in ALL if c in codes]
    return known + [c for c in codes if c not in known]


def group(code: str) -> str:
    """The evaluation group of a language: 'trained-high', 'trained-low' or 'unseen'."""
    lang = get(code)
    if lang.role == "unseen":
        return "unseen"
    return "trained-low" if lang.is_low_resource else "trained-high"


def check_codes(codes, *, source: str | None = None) -> tuple[str, ...]:
    """Validate a sequence of codes (order kept, duplicates refused)."""
    codes = tuple(codes)
    unknown = [c for c in codes if c not in LANGUAGES]
    if unknown:
        where = f"{source}: " if source else ""
        raise DataError(
            f"{where}unknown language code(s) {', '.join(map(repr, unknown))}. "
            f"Known codes: {' '.join(ALL)}. Fix: use ISO 639-1 codes from this list"
        )
    if len(set(codes)) != len(codes):
        raise DataError(f"{source + ': ' if source else ''}duplicate language codes in {codes}")
    return codes
