"""The claim mapping of Pro Santé Connect's user info (pipeline/domain/pro_sante_connect.py): the RPPS
from SubjectNameID, and the FINESS of each site where the professional practises as a pharmacist."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pipeline.domain.pro_sante_connect import Identity, identity


def _info(national: object, *practices: dict) -> dict:
    return {"sub": "x", "SubjectNameID": national, "SubjectRefPro": {"codeCivilite": "M", "exercices": list(practices)}}


def _practice(profession: str, *sites: object) -> dict:
    return {"codeProfession": profession, "activities": [{"numeroFinessSite": site, "raisonSocialeSite": "Site"}
                                                          for site in sites]}


def test_a_pharmacist_practising_at_two_officines_reads_as_both_in_order_without_repeats():
    found = identity(_info("810012345678", _practice("21", "690012345", "2A0012345"),
                           _practice("21", "690012345")))
    assert found == Identity("10012345678", ("690012345", "2A0012345"))


def test_a_doctor_reads_as_an_rpps_with_no_officine_even_when_a_site_has_a_finess():
    assert identity(_info("810018938356", _practice("10", "690012345"))) == Identity("10018938356", ())


def test_a_national_id_that_is_not_an_rpps_one_reads_as_no_rpps():
    for national in ("012345678901", "81001893835", "8100189383567", 810018938356, None):
        assert identity(_info(national)).rpps is None, national


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=12),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=20), inner,
                                                                                max_size=3), max_leaves=12))
def test_any_shape_of_user_info_reads_without_raising(value):
    for info in ({"SubjectRefPro": value, "SubjectNameID": value}, {"SubjectRefPro": {"exercices": value}},
                 {"SubjectRefPro": {"exercices": [{"codeProfession": "21", "activities": value}]}}):
        found = identity(info)
        assert all(len(site) == 9 for site in found.pharmacy_sites)
