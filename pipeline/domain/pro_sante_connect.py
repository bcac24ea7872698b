"""Who a Pro Santé Connect user is, read from its user info: the RPPS number and, per practice, the
profession and the FINESS of each site where they practise. The claim mapping lives here, once.

Pro Santé Connect's user info (scopes `openid scope_all`) carries, among others:

- `SubjectNameID`: the national identifier of the professional (`idNatPs`): `8` then the 11 digits
  of the RPPS number for a professional of the RPPS;
- `SubjectRefPro.exercices[]`: one entry per practice, with `codeProfession` (the profession's code
  in the G15 nomenclature: `21` pharmacien, `10` médecin, `50` sage-femme, `60` infirmier) and
  `activities[]`, each with `numeroFinessSite` (the FINESS of the site where the activity takes place,
  an officine for a pharmacist) beside `raisonSocialeSite` and the site's address.

Nothing else of the user info is read or kept: no name, no email address.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .identifiers import FINESS, RPPS

NATIONAL_ID_OF_RPPS = "8"  # the prefix of an RPPS-based national identifier (idNatPs)
PHARMACIST = "21"          # codeProfession of a pharmacien


@dataclass(frozen=True)
class Identity:
    """The professional's RPPS (None when the user info gives none) and the FINESS of the sites
    where they practise as a pharmacist, in the order given, without repeats."""

    rpps: str | None
    pharmacy_sites: tuple[str, ...]


def identity(userinfo: dict) -> Identity:
    """Read an Identity from Pro Santé Connect's user info; a missing or malformed claim reads as absent."""
    national = userinfo.get("SubjectNameID")
    rpps = None
    if isinstance(national, str) and national.startswith(NATIONAL_ID_OF_RPPS) \
            and re.fullmatch(RPPS, national[len(NATIONAL_ID_OF_RPPS):]):
        rpps = national[len(NATIONAL_ID_OF_RPPS):]
    sites: list[str] = []
    reference = userinfo.get("SubjectRefPro")
    practices = reference.get("exercices") if isinstance(reference, dict) else None
    for practice in practices if isinstance(practices, list) else []:
        if not isinstance(practice, dict) or practice.get("codeProfession") != PHARMACIST:
            continue
        activities = practice.get("activities")
        for activity in activities if isinstance(activities, list) else []:
            site = activity.get("numeroFinessSite") if isinstance(activity, dict) else None
            if isinstance(site, str) and re.fullmatch(FINESS, site) and site not in sites:
                sites.append(site)
    return Identity(rpps, tuple(sites))
