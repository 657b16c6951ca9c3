"""Build data/ketamine_trials.csv from the shared extraction files.

Every output row is written by hand below (no number is typed here without a
reference), and each row names the extraction rows its numbers come from. The
script then checks that every number in the row appears in the referenced
extraction rows, takes the citation, URL and evidence tier from them, and
refuses to write anything if a check fails.

Usage:
    python scripts/build_ketamine_dataset.py [EXTRACTIONS_DIR] [OUT_CSV]

Defaults: ../shared/data/ketamine-extractions and data/ketamine_trials.csv.
References: ("E", row_id) = extractions.csv row_id; ("I", k) and ("R", k) =
data row k (1-based, header excluded) of extractions-more-iv.csv and
extractions-more-routes.csv; ("C", k) = data row k of
cochrane-2021-derived-and-characteristics.csv.
"""

from __future__ import annotations

import csv
import math
import re
import sys
from pathlib import Path

FILES = {
    "E": "extractions.csv",
    "I": "extractions-more-iv.csv",
    "R": "extractions-more-routes.csv",
    "C": "cochrane-2021-derived-and-characteristics.csv",
    "D2": "extractions-dose-2.csv",
    "R2": "extractions-response-2.csv",
    "T2": "extractions-timecourse-2.csv",
}
COLUMNS = [
    "study", "arm", "treatment", "control", "dose", "dose_unit", "route", "doses_given",
    "population", "design", "time_h", "endpoint", "n", "n_binary", "scale", "domain", "mean",
    "sd", "se", "vs", "effect_outcome", "effect_measure", "effect", "effect_se",
    "mean_type", "responders", "response_def", "remitters", "remission_def",
    "evidence", "source", "notes",
]
#: the construct a rating scale measures; every other bundled scale measures depression
DOMAIN_BY_SCALE = {"SSI": "suicidal_ideation", "BSS": "suicidal_ideation",
                   "CSSRS_ISS": "suicidal_ideation"}
NUMERIC = ["n", "n_binary", "mean", "sd", "se", "responders", "remitters"]
TIER_ORDER = {"primary": 0, "secondary": 1, "derived": 2, "back_calculated": 3}

# Study-level attributes shared by every row of the study.
STUDIES: dict[str, dict[str, str]] = {
    "Lii2023": dict(population="unipolar_mdd", design="parallel"),
    "Daly2018": dict(population="unipolar_trd", design="parallel"),
    "Takahashi2021": dict(population="unipolar_trd", design="parallel"),
    "TRANSFORM1": dict(population="unipolar_trd", design="parallel"),
    "TRANSFORM2": dict(population="unipolar_trd", design="parallel"),
    "TRANSFORM3": dict(population="unipolar_trd", design="parallel"),
    "Chen2023": dict(population="unipolar_trd", design="parallel"),
    "CorreiaMelo2020": dict(population="unipolar_trd", design="parallel"),
    "Lapidus2014": dict(population="unipolar_mdd", design="crossover"),
    "Grunebaum2018": dict(population="suicidal_ideation", design="parallel"),
    "Grunebaum2017": dict(population="bipolar", design="parallel"),
    "Singh2016": dict(population="unipolar_trd", design="parallel"),
    "Su2017": dict(population="unipolar_trd", design="parallel"),
    "Fava2018": dict(population="unipolar_trd", design="parallel"),
    "Zarate2006": dict(population="unipolar_trd", design="crossover"),
    "Diazgranados2010": dict(population="bipolar", design="crossover"),
    "Zarate2012": dict(population="bipolar", design="crossover"),
    "Murrough2013": dict(population="unipolar_trd", design="parallel"),
    "Su2023": dict(population="unipolar_trd", design="parallel"),
    "Berman2000": dict(population="unipolar_mdd", design="crossover"),
    "Hu2016": dict(population="unipolar_mdd", design="parallel"),
    "Abbar2022": dict(population="suicidal_ideation", design="parallel"),
    "Anand2023": dict(population="unipolar_trd", design="parallel"),
    "Canuso2018": dict(population="suicidal_ideation", design="parallel"),
    "Fu2020": dict(population="suicidal_ideation", design="parallel"),
    "Singh2016b": dict(population="unipolar_trd", design="parallel"),
    "Reif2023": dict(population="unipolar_trd", design="parallel"),
    "Domany2019": dict(population="unipolar_trd", design="parallel"),
    "Arabzadeh2018": dict(population="unipolar_mdd", design="parallel"),
    "Jafarinia2016": dict(population="chronic_pain", design="parallel"),
    "Shiroma2014": dict(population="unipolar_trd", design="single_arm"),
    "Murrough2013b": dict(population="unipolar_trd", design="single_arm"),
    "Zheng2019": dict(population="unipolar_trd", design="single_arm"),
    "Cusin2017": dict(population="unipolar_trd", design="single_arm"),
    "VandeVoort2016": dict(population="mixed_mood", design="single_arm"),
    "Wilkinson2017": dict(population="unipolar_trd", design="single_arm"),
    "McIntyre2020": dict(population="mixed_mood", design="single_arm"),
    "Wilkinson2021": dict(population="unipolar_trd", design="single_arm"),
    "OpenLabelSA2022": dict(population="suicidal_ideation", design="single_arm"),
}

# Arm-level attributes: (study, arm) -> treatment, control, dose, unit, route.
KET_IV = dict(treatment="ketamine", control="false", dose="0.5", dose_unit="mg/kg", route="iv")
SALINE_IV = dict(treatment="saline", control="true", dose="0", dose_unit="mg/kg", route="iv")
MIDAZ = dict(treatment="midazolam", control="true", dose="0.045", dose_unit="mg/kg", route="iv")
PLAC_IN = dict(treatment="placebo", control="true", dose="0", dose_unit="mg", route="intranasal")


def esk_in(dose: str) -> dict[str, str]:
    """Intranasal esketamine arm attributes at a fixed or flexible dose in mg."""
    return dict(treatment="esketamine", control="false", dose=dose, dose_unit="mg",
                route="intranasal")


def ket_iv(dose: str) -> dict[str, str]:
    """IV racemic ketamine arm attributes at a dose in mg/kg."""
    return dict(KET_IV, dose=dose)


MADRS_RESP = ">=50% reduction in MADRS"
HAM_RESP = ">=50% reduction in HAM-D"

ROWS: list[dict] = []


def row(study: str, arm: str, attrs: dict, refs: list[tuple[str, int]],
        contrast: dict | None = None, cite: list[tuple[str, int]] | None = None,
        back_calculated: bool = False, **fields: str) -> None:
    """Add one output row (fields as strings; blanks omitted).

    ``contrast`` makes it (also) a contrast-level row: ``refs`` of the reported effect and SE
    (or, with ``derive``, of this arm's and the comparator's LS means with SEs), ``vs``,
    ``outcome`` and ``measure``. ``cite`` names extraction rows that are cited but give the
    row no number (the comparator of a reported difference). ``back_calculated`` marks counts
    recovered from a summary effect (an odds ratio and an assumed risk), not printed per arm:
    the tier ``back_calculated``, weaker than ``derived``.
    """
    ROWS.append(dict(study=study, arm=arm, attrs=attrs, refs=refs, fields=fields,
                     contrast=contrast, cite=cite or [], back_calculated=back_calculated))


def contrast_numbers(spec: dict, tables: dict) -> tuple[dict[str, str], list[str]]:
    """Return the effect columns of a contrast-level row and any problem with them.

    A reported effect is the referenced row's value with its SE; a derived one is the
    difference of two LS means, SE sqrt(se1^2 + se2^2) (independent arms assumed).
    """
    recs = [get_ref(tables, r) for r in spec["refs"]]
    problems = [f"contrast ref {r} gives {rec['dispersion_type']!r}, not an SE"
                for r, rec in zip(spec["refs"], recs, strict=True)
                if rec["dispersion_type"].strip().upper() != "SE"]
    out = {"vs": spec["vs"], "effect_outcome": spec["outcome"],
           "effect_measure": spec["measure"]}
    values = [float(rec["value"].replace("\u2212", "-")) for rec in recs]
    ses = [float(rec["dispersion"]) for rec in recs]
    if spec.get("derive"):
        out["effect"] = f"{values[0] - values[1]:.6g}"
        out["effect_se"] = f"{math.sqrt(ses[0] ** 2 + ses[1] ** 2):.6g}"
    else:
        out["effect"], out["effect_se"] = recs[0]["value"], recs[0]["dispersion"]
        found = numbers_in(recs[0])
        problems += [f"{col}={out[col]} not in {spec['refs'][0]}" for col in
                     ("effect", "effect_se") if round(float(out[col]), 6) not in found]
    return out, problems


# --- Lii 2023: IV ketamine 0.5 mg/kg vs saline under anaesthesia (PMC10769130 ED Table 1)
LII_NOTE = ("infused during surgical anaesthesia, which masks the acute effects (the trial's "
            "title: 'ketamine masked by surgical anesthesia')")
lii_days = [(0, None), (24, 1), (48, 2), (72, 3), (120, 5), (168, 7), (336, 14)]
for arm, attrs, first_e, first_resp, first_rem in [
    ("ketamine_0.5", KET_IV, 1, 8, 14), ("saline", SALINE_IV, 20, 27, 33)
]:
    for k, (t, _day) in enumerate(lii_days):
        mean_ref = ("E", first_e + k)
        if t == 0:
            row("Lii2023", arm, attrs, [mean_ref], time_h="0", doses_given="0",
                scale="MADRS", mean_type="endpoint", notes=LII_NOTE)
            continue
        refs = [mean_ref, ("E", first_resp + k - 1), ("E", first_rem + k - 1)]
        row("Lii2023", arm, attrs, refs, time_h=str(t), doses_given="1", scale="MADRS",
            mean_type="endpoint", response_def=">=50% reduction in MADRS from screening",
            remission_def="MADRS<=12", notes=LII_NOTE)

# --- Daly 2018: intranasal esketamine 28/56/84 mg vs placebo, period 1 (PMC5838571 Table 1)
daly_arms = [
    ("placebo", PLAC_IN, 39), ("esketamine_28", esk_in("28"), 49),
    ("esketamine_56", esk_in("56"), 62), ("esketamine_84", esk_in("84"), 75),
]
for arm, attrs, base in daly_arms:
    row("Daly2018", arm, attrs, [("E", base)], time_h="0", doses_given="0", scale="MADRS",
        mean_type="endpoint")
    # Placebo rows are change/resp/rem; active arms have an extra 'difference' row.
    step = 3 if arm == "placebo" else 4
    for k, (t, dg) in enumerate([("2", "1"), ("24", "1"), ("", "")]):
        first = base + 1 + k * step
        notes = "LS mean change with SE (MMRM, period 1)"
        if t == "":
            notes += "; period-1 end point (about day 8); doses before it and hours since the "\
                     "last dose not in the extraction"
        row("Daly2018", arm, attrs, [("E", first), ("E", first + 1), ("E", first + 2)],
            time_h=t, doses_given=dg, scale="MADRS", mean_type="change",
            response_def=">=50% reduction in MADRS", remission_def="MADRS<=10", notes=notes)

# --- Takahashi 2021: esketamine 28/56/84 mg vs placebo, Japan (day 28 observed cases)
for arm, attrs, base in [("esketamine_28", esk_in("28"), 88), ("esketamine_56", esk_in("56"), 90),
                         ("esketamine_84", esk_in("84"), 92), ("placebo", PLAC_IN, 94)]:
    row("Takahashi2021", arm, attrs, [("E", base)], time_h="0", doses_given="0", scale="MADRS",
        mean_type="endpoint")
    row("Takahashi2021", arm, attrs, [("E", base + 1)], scale="MADRS", mean_type="change",
        notes="day 28 of twice-weekly induction (672 h after the first dose); number of doses "
              "and hours since the last dose not in the extraction")

# --- TRANSFORM-1/2/3 and Chen 2023: registry results. One analysis population per trial
# (LOCF endpoint / full analysis set) so that n, means and counts agree.
TF_NOTE = ("day-28 endpoint, LOCF/ANCOVA population (FAS); time_h = 72 h after the day-25 "
           "dose and doses_given = 8 follow from the schedule (derived); the MMRM "
           "observed-case rows are not used")
for arm, attrs, refs in [
    ("esketamine_56", esk_in("56"), [("R", 37), ("R", 22), ("R", 28)]),
    ("esketamine_84", esk_in("84"), [("R", 38), ("R", 23), ("R", 29)]),
    ("placebo", PLAC_IN, [("R", 39), ("R", 24), ("R", 30)]),
]:
    row("TRANSFORM1", arm, attrs, refs, time_h="72", doses_given="8", scale="MADRS",
        mean_type="change", response_def=MADRS_RESP, remission_def="MADRS<=12", notes=TF_NOTE)
for arm, attrs, refs in [
    ("esketamine_flex", esk_in(""), [("R", 15), ("R", 9), ("R", 11)]),
    ("placebo", PLAC_IN, [("R", 16), ("R", 10), ("R", 12)]),
]:
    row("TRANSFORM2", arm, attrs, refs, time_h="72", doses_given="8", scale="MADRS",
        mean_type="change", response_def=MADRS_RESP, remission_def="MADRS<=12",
        notes=TF_NOTE + "; flexible 56 or 84 mg, so dose left blank")
for arm, attrs, refs in [
    ("esketamine_flex", esk_in(""), [("R", 46), ("R", 40), ("R", 42)]),
    ("placebo", PLAC_IN, [("R", 47), ("R", 41), ("R", 43)]),
]:
    row("TRANSFORM3", arm, attrs, refs, time_h="72", doses_given="8", scale="MADRS",
        mean_type="change", response_def=MADRS_RESP, remission_def="MADRS<=12",
        notes=TF_NOTE + "; adults aged 65 or older; flexible 28-84 mg, so dose left blank")
for arm, attrs, r24, r28 in [
    ("esketamine_flex", esk_in(""), 1, 5), ("placebo", PLAC_IN, 2, 6),
]:
    row("Chen2023", arm, attrs, [("R", r24)], time_h="24", doses_given="1", scale="MADRS",
        mean_type="change", notes="day 2, 24 h after the first dose (56 mg), observed cases "
                                  "(Table 3); flexible 56 or 84 mg afterwards, so dose left blank")
    row("Chen2023", arm, attrs, [("R", r28)], time_h="72", doses_given="8", scale="MADRS",
        mean_type="change", notes="day 28 observed cases; time_h and doses_given derived from "
                                  "the schedule")

# --- Correia-Melo 2020: IV ketamine 0.5 vs IV esketamine 0.25 mg/kg (no placebo)
for arm, attrs, base in [("ketamine_0.5", dict(KET_IV), 114),
                         ("esketamine_0.25", dict(treatment="esketamine", control="false",
                                                  dose="0.25", dose_unit="mg/kg", route="iv"),
                          117)]:
    row("CorreiaMelo2020", arm, attrs, [("E", base)], time_h="0", doses_given="0",
        scale="MADRS", mean_type="endpoint")
    row("CorreiaMelo2020", arm, attrs, [("E", base + 1), ("E", base + 2)], time_h="24",
        doses_given="1", scale="MADRS", mean_type="endpoint",
        remission_def="MADRS remission (threshold not stated in the abstract)",
        notes="remitters derived from the reported percentage and n")

# --- Lapidus 2014: intranasal ketamine 50 mg vs saline, crossover
for arm, attrs, ref in [
    ("ketamine_50mg", dict(treatment="ketamine", control="false", dose="50", dose_unit="mg",
                           route="intranasal"), 120),
    ("saline", dict(treatment="saline", control="true", dose="0", dose_unit="mg",
                    route="intranasal"), 121),
]:
    row("Lapidus2014", arm, attrs, [("E", ref)], time_h="24", doses_given="1", scale="MADRS",
        response_def=MADRS_RESP,
        notes="crossover: the same 18 patients in both arms (within-subject, both periods)")

# --- Grunebaum 2018: IV ketamine vs midazolam 0.02 mg/kg, MDD with suicidal ideation
MIDAZ02 = dict(MIDAZ, dose="0.02")
for arm, attrs, base, ssi in [("ketamine_0.5", KET_IV, 124, 125), ("midazolam", MIDAZ02, 126, 127)]:
    row("Grunebaum2018", arm, attrs, [("E", base)], time_h="0", doses_given="0", scale="HDRS",
        mean_type="endpoint", notes="HAM-D version not stated in the Cochrane table")
    row("Grunebaum2018", arm, attrs, [("E", ssi)], time_h="24", doses_given="1", scale="SSI",
        response_def=">=50% reduction in SSI",
        notes="SSI responders derived from the reported percentage and n")

# --- Grunebaum 2017 (bipolar): counts back-calculated from the Cochrane SoF OR
for arm, attrs, resp, rem in [("ketamine_0.5", KET_IV, 1, 3), ("midazolam", MIDAZ02, 2, 4)]:
    row("Grunebaum2017", arm, attrs, [("C", resp), ("C", rem)], back_calculated=True,
        time_h="24", doses_given="1",
        scale="MADRS", response_def="response (Cochrane CD011611 definition)",
        remission_def="remission (Cochrane CD011611 definition)",
        notes="counts back-calculated from the Cochrane summary-of-findings OR and assumed "
              "risk (not printed per arm); study identity inferred by the review extraction")

# --- Singh 2016: repeated IV ketamine vs placebo, day 15 (arm sizes not found)
for arm, attrs, ref, freq in [("ketamine_2x", KET_IV, 129, "twice"),
                              ("placebo_2x", SALINE_IV, 130, "twice"),
                              ("ketamine_3x", KET_IV, 131, "thrice"),
                              ("placebo_3x", SALINE_IV, 132, "thrice")]:
    row("Singh2016", arm, attrs, [("E", ref)], scale="MADRS", mean_type="change",
        notes=f"day 15 of {freq}-weekly infusions; arm n not found (68 randomised in total), "
              "so the row cannot enter a model")

# --- Su 2017 and Fava 2018: baselines and arm sizes only (no outcomes found)
for arm, attrs, ref in [("ketamine_0.5", ket_iv("0.5"), 99), ("ketamine_0.2", ket_iv("0.2"), 100),
                        ("saline", SALINE_IV, 101)]:
    row("Su2017", arm, attrs, [("I", ref)], time_h="0", doses_given="0", scale="HDRS17",
        mean_type="endpoint",
        notes="baseline only; arm n derived from reported sex percentages; outcomes by dose "
              "not found")
for arm, attrs, base in [("ketamine_0.1", ket_iv("0.1"), 53), ("ketamine_0.2", ket_iv("0.2"), 55),
                         ("ketamine_0.5", ket_iv("0.5"), 57), ("ketamine_1.0", ket_iv("1.0"), 59),
                         ("midazolam", MIDAZ, 61)]:
    row("Fava2018", arm, attrs, [("I", base), ("I", base + 1)], time_h="0", doses_given="0",
        scale="HAMD6", mean_type="endpoint",
        notes="baseline only (Cochrane characteristics); arm-level outcomes by dose not found")

# --- Zarate 2006 (crossover): first-period baselines and a response rate without time point
row("Zarate2006", "ketamine_0.5", KET_IV, [("I", 65)], time_h="0", doses_given="0",
    scale="HDRS21", mean_type="endpoint", notes="first-period arm; SD not reported")
row("Zarate2006", "saline", SALINE_IV, [("I", 66)], time_h="0", doses_given="0",
    scale="HDRS21", mean_type="endpoint", notes="first-period arm; SD not reported")
row("Zarate2006", "ketamine_0.5_within", KET_IV, [("I", 67)], doses_given="1", scale="HDRS",
    response_def=HAM_RESP,
    notes="crossover, both periods (17 patients); time point not stated in the secondary "
          "table; responders derived from 71%")

# --- Diazgranados 2010 and Zarate 2012 (bipolar crossovers): first-period baselines only.
for study, k_ref, p_ref in [("Diazgranados2010", 70, 71), ("Zarate2012", 75, 76)]:
    row(study, "ketamine_0.5", KET_IV, [("I", k_ref)], time_h="0", doses_given="0",
        scale="MADRS", mean_type="endpoint",
        notes="first-period arm; response 'at any point' reported only as percentages that do "
              "not give whole counts, so not entered")
    row(study, "saline", SALINE_IV, [("I", p_ref)], time_h="0", doses_given="0", scale="MADRS",
        mean_type="endpoint", notes="first-period arm")

# --- Murrough 2013: IV ketamine vs midazolam, 24 h; SI outcomes from the Price 2014 subsample
row("Murrough2013", "ketamine_0.5", KET_IV, [("I", 47), ("I", 49)], time_h="24",
    doses_given="1", scale="MADRS", mean_type="change", response_def=MADRS_RESP,
    notes="responders derived from 64% of 47 (arm size from a secondary table); mean change "
          "from a preliminary meeting abstract, no SD, n derived from t-test df")
row("Murrough2013", "midazolam", MIDAZ, [("I", 48), ("I", 50)], time_h="24", doses_given="1",
    scale="MADRS", mean_type="change", response_def=MADRS_RESP,
    notes="responders derived from 28% of 25; mean change from a preliminary meeting abstract, "
          "no SD")
for arm, attrs, base, bss, comp in [("ketamine_0.5", KET_IV, 29, 31, 45),
                                    ("midazolam", MIDAZ, 30, 32, 46)]:
    sub = "Price 2014 subsample of this trial (not an independent trial)"
    row("Murrough2013", arm, attrs, [("I", base)], time_h="0", doses_given="0", scale="BSS",
        mean_type="endpoint", notes=sub)
    row("Murrough2013", arm, attrs, [("I", bss), ("I", comp)], time_h="24", doses_given="1",
        scale="BSS", mean_type="endpoint",
        remission_def="score 0 on BSS, MADRS suicide item and QIDS suicide item",
        notes=sub + "; remitters derived from the reported percentage")

# --- Su 2023: IV ketamine vs midazolam in TRD with prominent suicidal ideation
for arm, attrs, base, resp, rem0 in [("ketamine_0.5", KET_IV, 1, 7, 9),
                                     ("midazolam", MIDAZ, 2, 8, 10)]:
    row("Su2023", arm, attrs, [("I", base)], time_h="0", doses_given="0", scale="MADRS",
        mean_type="endpoint", notes="all patients with prominent suicidal ideation")
    row("Su2023", arm, attrs, [("I", resp)], time_h="48", doses_given="1", scale="MADRS",
        endpoint="cumulative",
        response_def=">=50% MADRS reduction at least once on day 2 or day 3",
        notes="response counted at 24 or 48 h (at least once): a cumulative endpoint up to "
              "48 h, which may exceed a fixed-time rate; day n read as (n-1)x24 h")
    row("Su2023", arm, attrs, [("I", base + 4)], time_h="0", doses_given="0", scale="CSSRS_ISS",
        mean_type="endpoint")
    for k, t in enumerate(["4", "24", "48", "96", "144", "312"]):
        row("Su2023", arm, attrs, [("I", rem0 + 2 * k)], time_h=t, doses_given="1",
            scale="CSSRS_ISS", remission_def="C-SSRS ideation severity score 0",
            notes="remission of suicidal ideation; day n read as (n-1)x24 h")

# --- Berman 2000 (crossover): change within 72 h
row("Berman2000", "ketamine_0.5", KET_IV, [("I", 63)], time_h="72", doses_given="1",
    scale="HDRS25", mean_type="change",
    notes="crossover completers; change 'within 72 hours' (72 h is an upper bound)")
row("Berman2000", "saline", SALINE_IV, [("I", 64)], time_h="72", doses_given="1",
    scale="HDRS25", mean_type="change", notes="crossover; the same 7 patients as the ketamine arm")

# --- Hu 2016: single IV ketamine + escitalopram vs saline + escitalopram, week 4
for arm, attrs, resp, rem in [("ketamine_0.5", KET_IV, 88, 90), ("saline", SALINE_IV, 89, 91)]:
    row("Hu2016", arm, attrs, [("I", resp), ("I", rem)], time_h="672", doses_given="1",
        scale="MADRS", response_def=MADRS_RESP,
        remission_def="remission (definition not in the abstract)",
        notes="both arms on escitalopram 10 mg/day; counts derived from percentages; arm n "
              "from a secondary table")

# --- Abbar 2022: two IV ketamine infusions vs placebo in suicidal inpatients (day 3)
row("Abbar2022", "ketamine_0.5", KET_IV, [("I", 92)], doses_given="2", scale="SSI",
    remission_def="SSI<=3 (full suicidal remission)",
    notes="day 3; abstract denominators conflict (see placebo row); ketamine total 73 on "
          "arithmetic grounds")
row("Abbar2022", "placebo", SALINE_IV, [("I", 93)], doses_given="2", scale="SSI", remitters="",
    notes="day 3; 25 remitters reported but the denominator (73, 79 or 83) is unclear in the "
          "abstract, so no count is entered; randomised n = 83")

# --- ELEKT-D (Anand 2023): IV ketamine vs ECT (open label), end of 3-week treatment
for arm, attrs, resp, rem in [
    ("ketamine_0.5", KET_IV, 101, 103),
    ("ECT", dict(treatment="ECT", control="true", dose="", dose_unit="", route=""), 102, 104),
]:
    row("Anand2023", arm, attrs, [("R", resp), ("R", rem)], scale="QIDS_SR16",
        doses_given="6" if arm != "ECT" else "",
        response_def=">=50% decrease in QIDS-SR16", remission_def="QIDS-SR16<=5 (per review)",
        notes="open label; active comparator; end of the 3-week treatment phase; counts "
              "derived from percentages of the treated patients (remission from integer %, +/-1)")

# --- Canuso 2018: intranasal esketamine 84 mg vs placebo, imminent suicide risk, day 2
# MADRS change at ~24 h and 4 h: the AJP paper's LS mean differences (contrast level)
CANUSO_MD = dict(vs="placebo", outcome="change", measure="MD")
for arm, attrs, resp, rem in [("esketamine_84", esk_in("84"), 50, 52),
                              ("placebo", PLAC_IN, 51, 53)]:
    extra = dict(contrast=dict(CANUSO_MD, refs=[("T2", 22)]), mean_type="change") \
        if arm == "esketamine_84" else {}
    row("Canuso2018", arm, attrs, [("R", resp), ("R", rem)], time_h="24", doses_given="1",
        scale="MADRS", response_def="MADRS response (definition not in congress abstract)",
        remission_def="MADRS remission (definition not in congress abstract)",
        notes="congress abstract; placebo denominator 31 inferred from two percentages"
              + ("; MADRS change: LS mean difference vs placebo (AJP 2018)" if extra else ""),
        **extra)
row("Canuso2018", "esketamine_84", esk_in("84"), [], time_h="4", doses_given="1",
    scale="MADRS", mean_type="change", contrast=dict(CANUSO_MD, refs=[("T2", 21)]),
    notes="MADRS change at 4 h: LS mean difference vs placebo (AJP 2018)")
row("Canuso2018", "placebo", PLAC_IN, [], cite=[("T2", 21)], time_h="4", doses_given="1",
    scale="MADRS", notes="comparator of the 4-h LS mean difference (no arm-level numbers)")

# --- Fu 2020 (ASPIRE I): intranasal esketamine 84 mg vs placebo, suicidal ideation with intent
row("Fu2020", "esketamine_84", esk_in("84"), [], time_h="24", doses_given="1", scale="MADRS",
    mean_type="change", contrast=dict(vs="placebo", outcome="change", measure="MD",
                                      refs=[("T2", 30)]),
    notes="MADRS change to 24 h: LS mean difference vs placebo (contrast level); 226 "
          "randomised, arm sizes not in the extraction")
row("Fu2020", "placebo", PLAC_IN, [], cite=[("T2", 30)], time_h="24", doses_given="1",
    scale="MADRS", notes="comparator of the LS mean difference (no arm-level numbers)")

# --- Singh 2016 (Biol Psychiatry): IV esketamine 0.2 / 0.4 mg/kg vs saline, day-1
# randomisation. Arm sizes are not reported (9/11/10 is implied only by percentages), so the
# LS mean changes enter as differences from placebo (derived; LS means treated as independent)
ESK_IV = dict(treatment="esketamine", control="false", dose_unit="mg/kg", route="iv")
for arm, dose, ref in [("esketamine_0.2", "0.2", 16), ("esketamine_0.4", "0.4", 17)]:
    row("Singh2016b", arm, dict(ESK_IV, dose=dose), [], time_h="24", doses_given="1",
        scale="MADRS", mean_type="change",
        contrast=dict(vs="saline", outcome="change", measure="MD", derive=True,
                      refs=[("D2", ref), ("D2", 18)]),
        notes="MADRS change to day 2 (~24 h): LS mean change minus saline's, SE "
              "sqrt(se1^2 + se2^2); arm n not reported")
row("Singh2016b", "saline", SALINE_IV, [("D2", 18)], time_h="24", doses_given="1",
    scale="MADRS", mean_type="change",
    notes="LS mean change (SE); arm n not reported, so no arm-level contrast")

# --- ESCAPE-TRD (Reif 2023): esketamine vs quetiapine XR, week 8
row("Reif2023", "esketamine_flex", esk_in(""), [("R", 107)], scale="MADRS",
    remission_def="MADRS<=10", notes="week 8 of flexible (28-84 mg) repeated dosing; open label")
row("Reif2023", "quetiapine", dict(treatment="quetiapine", control="true", dose="",
                                   dose_unit="", route="oral"), [("R", 108)], scale="MADRS",
    remission_def="MADRS<=10", notes="week 8; active comparator")

# --- Oral ketamine trials
row("Domany2019", "ketamine_oral_1", dict(treatment="ketamine", control="false", dose="1",
                                          dose_unit="mg/kg", route="oral"),
    [("R", 54)], scale="MADRS", remission_def="remission (definition not in the abstract)",
    notes="day 21 of thrice-weekly oral dosing")
row("Domany2019", "placebo", dict(treatment="placebo", control="true", dose="0",
                                  dose_unit="mg/kg", route="oral"),
    [("R", 55)], scale="MADRS", remission_def="remission (definition not in the abstract)",
    notes="day 21")
for arm, attrs, resp, rem in [
    ("ketamine_oral_50", dict(treatment="ketamine", control="false", dose="50",
                              dose_unit="mg/day", route="oral"), 58, 60),
    ("placebo", dict(treatment="placebo", control="true", dose="0", dose_unit="mg/day",
                     route="oral"), 59, 61),
]:
    row("Arabzadeh2018", arm, attrs, [("R", resp), ("R", rem)], scale="HDRS",
        response_def=HAM_RESP, remission_def="HDRS<=7",
        notes="week 6, daily dosing with sertraline 150 mg/day; percentages from a news report, "
              "counts derived")
for arm, attrs, w3 in [
    ("ketamine_oral", dict(treatment="ketamine", control="false", dose="150",
                           dose_unit="mg/day", route="oral"), 64),
    ("diclofenac", dict(treatment="diclofenac", control="true", dose="150", dose_unit="mg/day",
                        route="oral"), 65),
]:
    row("Jafarinia2016", arm, attrs, [("R", w3)], scale="HADS_D", mean_type="endpoint",
        notes="week 3 of daily dosing (completers); chronic pain with mild-moderate depression")

# --- Open-label repeated-infusion series (single arm): after the first and the last infusion
row("Shiroma2014", "ketamine_0.5", KET_IV, [("R", 68), ("R", 69)], doses_given="1",
    scale="MADRS", response_def=MADRS_RESP, remission_def="MADRS remission (per abstract)",
    notes="after the first infusion (completers); hours after it not stated")
row("Shiroma2014", "ketamine_0.5_x6", KET_IV, [("R", 70), ("R", 71)], doses_given="6",
    scale="MADRS", response_def=MADRS_RESP, remission_def="MADRS remission (per abstract)",
    notes="the same 12 patients after six infusions")
row("Murrough2013b", "ketamine_0.5_x6", KET_IV, [("R", 72)], doses_given="6", scale="MADRS",
    response_def=">50% reduction in MADRS", notes="up to six infusions; responders derived")
row("Zheng2019", "ketamine_0.5", KET_IV, [("R", 76), ("R", 77)], doses_given="1",
    scale="MADRS", response_def=MADRS_RESP, remission_def="MADRS remission (per abstract)",
    notes="after the first infusion; MDD subset of the Zheng 2018 cohort (Zheng 2018 not "
          "entered: overlapping patients)")
row("Zheng2019", "ketamine_0.5_x6", KET_IV, [("R", 78), ("R", 79)], doses_given="6",
    scale="MADRS", response_def=MADRS_RESP, remission_def="MADRS remission (per abstract)",
    notes="the same 77 patients after six infusions")
row("Cusin2017", "ketamine_0.5_x3", KET_IV, [("R", 80)], doses_given="3", scale="HDRS28",
    response_def=HAM_RESP, notes="after three 0.5 mg/kg infusions")
row("Cusin2017", "ketamine_0.5_0.75_x6", dict(KET_IV, dose="0.75"), [("R", 83), ("R", 84)],
    doses_given="6", scale="HDRS28", response_def=HAM_RESP, remission_def="HAM-D remission",
    notes="ITT after three 0.5 then three 0.75 mg/kg infusions (dose = last dose)")
row("VandeVoort2016", "ketamine_0.5_x6", KET_IV, [("R", 85), ("R", 86)], doses_given="6",
    scale="unnamed", response_def="response (scale not named in abstract)",
    remission_def="remission (scale not named in abstract)",
    notes="up to six infusions; unipolar or bipolar TRD with suicidal ideation")
row("Wilkinson2017", "ketamine_0.5_x4", KET_IV, [("R", 89), ("R", 90)], doses_given="4",
    scale="unnamed", response_def="response (scale not named in abstract)",
    remission_def="remission (scale not named in abstract)",
    notes="during the first two weeks (four infusions), with CBT")
row("McIntyre2020", "ketamine_x4", dict(KET_IV, dose=""), [("R", 87), ("R", 88)],
    doses_given="4", scale="QIDS_SR16", response_def=">=50% reduction in QIDS-SR16",
    remission_def="QIDS-SR16<=5",
    notes="naturalistic clinic series, 0.5-0.75 mg/kg (dose left blank); counts derived from "
          "integer percentages (+/-1)")
row("Wilkinson2021", "ketamine_x6", dict(KET_IV, dose=""), [("R", 92)], doses_given="6",
    scale="MADRS", response_def=">=50% improvement",
    notes="open ketamine phase before the CBT randomisation; denominator = consented patients")

# --- Open-label single infusion in recent suicide attempters (IJERPH 2022, PMC9656070)
for k, t in enumerate(["0", "24", "120", "288"]):
    row("OpenLabelSA2022", "ketamine_0.5", KET_IV, [("R", 143 + k)], time_h=t,
        doses_given="0" if t == "0" else "1", scale="MADRS", mean_type="endpoint",
        notes="open label, transdiagnostic medically hospitalised suicide attempters; time_h "
              "derived from day labels; study key from the journal, first author not in the "
              "extraction")


# --------------------------------------------------------------------------- machinery
def load(folder: Path) -> dict[str, list[dict[str, str]]]:
    """Read the extraction tables keyed by their one-letter code."""
    tables = {}
    for key, name in FILES.items():
        with open(folder / name, newline="", encoding="utf-8") as fh:
            tables[key] = list(csv.DictReader(fh))
    return tables


def get_ref(tables: dict, ref: tuple[str, int]) -> dict[str, str]:
    """Return the extraction row a reference points to."""
    key, k = ref
    if key == "E":
        matches = [r for r in tables["E"] if r["row_id"] == str(k)]
        return matches[0]
    return tables[key][k - 1]


def tier(key: str, rec: dict[str, str]) -> str:
    """Evidence tier of one extraction row."""
    if key in ("I", "R", "D2", "R2", "T2"):
        return rec["evidence"].strip()
    if key == "C":
        return "derived" if rec["quote"].startswith("DERIVED") else "secondary"
    v = rec["verification"].lower()
    if "derived" in v or "count derived" in rec["stat"].lower():
        return "derived"
    if "secondary" in v:
        return "secondary"
    return "primary"


def numbers_in(rec: dict[str, str]) -> set[float]:
    """Every number that appears in the numeric cells of an extraction row."""
    cells = ["value", "dispersion", "events", "total", "n", "n_randomized", "n_analysed",
             "mean", "sd"]
    out: set[float] = set()
    for c in cells:
        text = rec.get(c, "") or ""
        text = text.replace("\u2212", "-").replace("\u2010", "-")
        m = re.match(r"\s*(-?\d+(?:\.\d+)?|-?\.\d+)", text)
        if m:
            out.add(round(float(m.group(1)), 6))
    return out


def citation(key: str, rec: dict[str, str]) -> str:
    """Short citation of an extraction row: title or study, identifiers and URL."""
    if key == "E":
        head = rec["source_title"]
        ids = "; ".join(x for x in [f"PMID {rec['pmid']}" if rec["pmid"] else "",
                                    f"doi {rec['doi']}" if rec["doi"] else "",
                                    rec["registry"]] if x)
    elif key == "C":
        head, ids = rec["analysis_title"], ""
    else:
        head = rec["study"]
        ids = "; ".join(x for x in [f"PMID {rec['pmid']}" if rec["pmid"] else "",
                                    f"doi {rec['doi']}" if rec["doi"] else ""] if x)
    url = rec.get("source_url", "").split(" ")[0]
    return " | ".join(x for x in [head, ids, url] if x)


def fill_numbers(spec: dict, tables: dict) -> dict[str, str]:
    """Take the numbers of a row from its referenced extraction rows.

    The n of a mean goes to ``n``; the denominator of the counts goes to ``n`` too
    when the row has no mean, and to ``n_binary`` when it differs from the mean's n.
    """
    out: dict[str, str] = {}
    mean_n, count_n = "", ""
    for ref in spec["refs"]:
        key, _ = ref
        rec = get_ref(tables, ref)
        if key == "C":
            count_n = rec["total"]
            out["responders" if rec["outcome"] == "response" else "remitters"] = rec["events"]
            continue
        if key == "E":
            outcome = rec["outcome"].lower()
            n = rec["n_analysed"] or rec["n_randomized"]
        else:
            outcome = rec["scale"].lower() + " " + rec["stat"].lower()
            n = rec["n"]
        stat = rec["stat"].lower()
        n_num = re.match(r"\s*(\d+)", n or "")
        n_num = n_num.group(1) if n_num else ""
        if "n randomized" in stat:
            mean_n = rec["value"]
            continue
        if rec["events"]:
            total = re.match(r"\s*(\d+)", rec["total"] or "")
            count_n = total.group(1) if total else n_num
            is_resp = "respon" in outcome or "respon" in stat
            out["responders" if is_resp else "remitters"] = rec["events"]
            continue
        if stat.startswith(("count", "percent", "responders", "remitters", "participants")):
            continue  # a percentage without a count: not entered
        out["mean"] = rec["value"].replace("\u2212", "-")
        dtype = rec["dispersion_type"].strip().upper()
        if dtype in ("SD", "SE"):
            out[dtype.lower()] = rec["dispersion"]
        mean_n = n_num
    out["n"] = mean_n or count_n
    if mean_n and count_n and mean_n != count_n:
        out["n_binary"] = count_n
    return out


def without_tables(specs: list[dict], excluded: set[str]) -> list[dict]:
    """Return the rows as they stand without the extraction tables ``excluded``.

    A contrast drawn from an excluded table is removed; so is a row left with no numbers
    from the other tables and no contrast (a comparator cited only for that contrast), and
    so are the fields such a contrast brought (``mean_type`` of a contrast-only row).
    """
    out = []
    for spec in specs:
        refs = [r for r in spec["refs"] if r[0] not in excluded]
        contrast = spec.get("contrast")
        if contrast and any(k in excluded for k, _ in contrast["refs"]):
            contrast = None
        if not refs and not contrast:
            continue
        fields = dict(spec["fields"])
        if spec.get("contrast") and not contrast and not any(
                k in ("mean", "sd", "se") for k in fields) and "mean" not in str(refs):
            fields.pop("mean_type", None)
        out.append(dict(spec, refs=refs, contrast=contrast,
                        cite=[r for r in spec["cite"] if r[0] not in excluded],
                        fields=fields))
    return out


def build(folder: Path, excluded: set[str] | None = None) -> list[dict[str, str]]:
    """Assemble and check every output row (without the tables ``excluded``, if given)."""
    tables = load(folder)
    rows, problems = [], []
    for spec in without_tables(ROWS, excluded) if excluded else ROWS:
        out = {c: "" for c in COLUMNS}
        out.update(study=spec["study"], arm=spec["arm"])
        out.update(STUDIES[spec["study"]])
        out.update(spec["attrs"])
        out.update(fill_numbers(spec, tables))
        contrast = spec.get("contrast")
        if contrast:
            numbers, said = contrast_numbers(contrast, tables)
            out.update(numbers)
            problems += [f"{spec['study']}/{spec['arm']}: {x}" for x in said]
        out.update(spec["fields"])
        out["domain"] = DOMAIN_BY_SCALE.get(out["scale"], "depression")
        if not out["endpoint"]:  # untimed counts after a course are read at its end
            series = not out["time_h"] and int(out["doses_given"] or 0) > 1
            out["endpoint"] = "series_end" if series else "fixed"
        if out["mean"] and not out["mean_type"]:
            problems.append(f"{spec['study']}/{spec['arm']}: mean without mean_type")
        refs = [(k, get_ref(tables, (k, i))) for k, i in spec["refs"]]
        found = set().union(*(numbers_in(r) for _, r in refs))
        for col in NUMERIC:
            if out[col] and round(float(out[col]), 6) not in found:
                problems.append(f"{spec['study']}/{spec['arm']} t={out['time_h']}: {col}="
                                f"{out[col]} not in its references {spec['refs']}")
        extra_refs = (contrast["refs"] if contrast else []) + spec["cite"]
        refs += [(k, get_ref(tables, (k, i))) for k, i in extra_refs]
        tiers = [tier(k, r) for k, r in refs] + (["derived"] if contrast and
                                                 contrast.get("derive") else []) + (
            ["back_calculated"] if spec.get("back_calculated") else [])
        out["evidence"] = max(tiers, key=lambda t: TIER_ORDER[t])
        cites = []
        all_refs = spec["refs"] + extra_refs
        for (k, i), (_, r) in zip(all_refs, refs, strict=True):
            c = citation(k, r)
            tag = f"{FILES[k]} {'row_id' if k == 'E' else 'row'} {i}"
            cites.append((c, tag))
        merged: dict[str, list[str]] = {}
        for c, tag in cites:
            merged.setdefault(c, []).append(tag)
        out["source"] = " || ".join(f"{c} [{', '.join(tags)}]" for c, tags in merged.items())
        rows.append(out)
    keys = [(r["study"], r["arm"], r["time_h"], r["scale"], r["doses_given"]) for r in rows]
    dupes = {k for k in keys if keys.count(k) > 1}
    problems += [f"duplicate row {k}" for k in sorted(dupes)]
    if problems:
        raise SystemExit("refusing to write:\n" + "\n".join(problems))
    return rows


def main() -> None:
    """Build and write the dataset.

    Arguments: the extractions folder, the output file, and optionally ``--without
    D2,R2,T2`` to write the dataset as it stood before those extraction tables (the
    baseline of the report's "What the new evidence changed").
    """
    args = list(sys.argv[1:])
    excluded: set[str] = set()
    if "--without" in args:
        i = args.index("--without")
        excluded = set(args[i + 1].split(","))
        del args[i:i + 2]
        unknown = excluded - set(FILES)
        if unknown:
            raise SystemExit(f"unknown extraction tables {sorted(unknown)}; use {sorted(FILES)}")
    folder = Path(args[0] if args else "../shared/data/ketamine-extractions")
    out_path = Path(args[1] if len(args) > 1 else "data/ketamine_trials.csv")
    rows = build(folder, excluded)
    tmp = out_path.with_suffix(".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    tmp.replace(out_path)
    print(f"wrote {len(rows)} rows, {len({r['study'] for r in rows})} studies to {out_path}")


if __name__ == "__main__":
    main()
