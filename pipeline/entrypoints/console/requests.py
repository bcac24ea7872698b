"""What a person sends, read into the services' inputs, with a French sentence for each mistake in it.

A mistake of form is a BadRequest (400) said here; a request well formed that a service refuses is that
service's refusal (pipeline/services/refusals.py), rendered by its class."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from pydantic import ValidationError

from pipeline.adapters.files.changes import read_changes
from pipeline.adapters.files.scenario import ScenarioError
from pipeline.domain.changes import Changes
from pipeline.domain.identifiers import CONTROL, FINESS

WHAT = {"missing": "manquant", "extra_forbidden": "champ inconnu", "greater_than_equal": "doit être positif ou nul",
        "greater_than": "doit être positif", "less_than_equal": "trop grand", "int_type": "doit être un nombre entier",
        "int_parsing": "doit être un nombre entier", "date_type": "doit être une date (AAAA-MM-JJ)",
        "date_from_datetime_parsing": "doit être une date (AAAA-MM-JJ)", "date_parsing": "doit être une date (AAAA-MM-JJ)",
        "value_error": "valeur invalide", "string_type": "doit être un texte", "dict_type": "doit être une table",
        "tuple_type": "doit être une liste", "list_type": "doit être une liste", "model_type": "doit être un objet",
        "too_long": "trop d'éléments"}
FIELDS = {"effective": "date d'effet", "supply": "stock", "cancel": "lignes annulées", "depot_days": "jours de dépôt",
          "redistribution": "redistribution", "depot_id": "dépôt", "date": "date", "capacity_vials": "capacité",
          "order_id": "ligne", "vials": "flacons", "to_rpps": "RPPS du professionnel qui reçoit"}


class BadRequest(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def finess(text: str) -> str:
    text = (text or "").strip()
    if not re.fullmatch(FINESS, text):
        raise BadRequest(f"« {text[:20]} » n'est pas un numéro FINESS (9 chiffres, A ou B en 2e position pour la Corse).")
    return text


def changes_from_json(data: object) -> Changes:
    if not isinstance(data, dict):
        raise BadRequest("Modifications invalides : « changes » doit être un objet (le fichier changes.toml en JSON).")
    try:
        return Changes.model_validate(data)
    except ValidationError as error:
        raise BadRequest(f"Modifications invalides : {_said(error)}") from None


def changes_from_toml(content: bytes) -> Changes:
    """An uploaded changes.toml, read by the same reader as `vialflow reallocate`."""
    if len(content) > 1_000_000:
        raise BadRequest("Fichier de modifications trop gros (1 Mo au plus).")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "changes.toml"
        path.write_bytes(content)
        try:
            return read_changes(path)
        except ScenarioError as error:
            raise BadRequest(f"Le fichier de modifications ne se lit pas : {error}") from None


def changes_from_form(form) -> Changes:
    """The reallocation composed in the page: effective date, supply and policy per vaccine, one depot
    day, cancelled lines, one redistribution."""
    data: dict = {"effective": _field(form, "effective")}
    supply = {}
    for key, value in form.multi_items():
        if key.startswith("supply_") and str(value).strip():
            supply[key.removeprefix("supply_")] = _count(value, f"stock de {key.removeprefix('supply_')}", signed=True)
    if supply:
        data["supply"] = supply
    policies = {"allocation": {}, "remainders": {}}  # R7: a vaccine's policy, when the page changes it
    for key, value in form.multi_items():
        if key.startswith("allocation_") and str(value).strip():
            policies["allocation"][key.removeprefix("allocation_")] = str(value).strip()
        if key.startswith("remainders_") and str(value).strip() in ("oui", "non"):
            policies["remainders"][key.removeprefix("remainders_")] = str(value).strip() == "oui"
    data.update({name: chosen for name, chosen in policies.items() if chosen})
    cancel = [part for part in re.split(r"[\s,;]+", _field(form, "cancel")) if part]
    if cancel:
        data["cancel"] = cancel
    if _field(form, "depot_id"):
        data["depot_days"] = [{"depot_id": _field(form, "depot_id"), "date": _field(form, "depot_date"),
                               "capacity_vials": _count(_field(form, "depot_capacity") or "0", "capacité")}]
    if _field(form, "redistribution_order"):
        data["redistribution"] = [{"order_id": _field(form, "redistribution_order"),
                                   "vials": _count(_field(form, "redistribution_vials"), "flacons redistribués"),
                                   "to_rpps": _field(form, "redistribution_rpps")}]
    if not data["effective"]:
        raise BadRequest("Donnez la date d'effet de la réallocation.")
    return changes_from_json(data)


def reason(text: object) -> str:
    said = " ".join(str(text or "").split())
    if not said:
        raise BadRequest("Un motif est obligatoire.")
    if re.search(CONTROL, said):
        raise BadRequest("Le motif contient un caractère de contrôle : retapez-le.")
    if len(said) > 500:
        raise BadRequest("Le motif tient en 500 caractères au plus.")
    return said


def _field(form, name: str) -> str:
    return str(form.get(name) or "").strip()


def _count(text: str, what: str, signed: bool = False) -> int:
    text = str(text).strip()
    if signed and re.fullmatch(r"-\s*[0-9]+", text):
        raise BadRequest(f"{what[:1].upper() + what[1:]} : un nombre de flacons ne peut pas être négatif.")
    if not re.fullmatch(r"[0-9]{1,9}", text):
        raise BadRequest(f"{what[:1].upper() + what[1:]} : « {text[:20]} » n'est pas un nombre entier de flacons.")
    return int(text)


def _said(error: ValidationError) -> str:
    first = error.errors()[0]
    where = " › ".join(FIELDS.get(str(part), str(part)) for part in first["loc"]) or "ensemble"
    what = WHAT.get(first["type"], first["msg"])
    if first["type"] == "greater_than_equal" and isinstance(first.get("input"), int) and first["input"] < 0:
        what = "ne peut pas être négatif"
    return f"{where} : {what}."
