"""Write the bad-input corpus (run once; the files are committed next to this script).

Each case is a file plus the command that reads it and the words its error must contain;
the list is written to ``expected.json``, which tests/robustness/test_bad_inputs.py runs.

    python tests/data/bad/make_corpus.py
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pandas as pd

HERE = Path(__file__).parent
HEADER = ["study", "arm", "treatment", "control", "dose", "dose_unit", "route", "doses_given",
          "population", "design", "time_h", "n", "scale", "mean", "sd", "mean_type",
          "responders", "remitters", "source", "evidence"]


def rows() -> list[dict[str, str]]:
    out = []
    for study, (kr, kn, pr, pn) in {"A2001": (10, 20, 2, 20), "B2002": (15, 30, 4, 30),
                                    "C2003": (9, 25, 5, 25)}.items():
        for arm, treat, ctl, dose, r, n in [("ket", "ketamine", "false", "0.5", kr, kn),
                                           ("pbo", "saline", "true", "0", pr, pn)]:
            out.append(dict(study=study, arm=arm, treatment=treat, control=ctl, dose=dose,
                            dose_unit="mg/kg", route="iv", doses_given="1",
                            population="unipolar_trd", design="parallel", time_h="24",
                            n=str(n), scale="MADRS", mean="", sd="", mean_type="",
                            responders=str(r), remitters=str(r // 2),
                            source=f"doi:10.0/{study} Table 2", evidence="primary"))
    return out


def csv_text(data: list[dict[str, str]], header: list[str] | None = None,
             sep: str = ",") -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=header or HEADER, extrasaction="ignore",
                       lineterminator="\n", delimiter=sep)
    w.writeheader()
    w.writerows(data)
    return buf.getvalue()


def edit(row: int, **values: str) -> list[dict[str, str]]:
    data = rows()
    data[row].update(values)
    return data


CASES: list[dict] = []


def case(name: str, content: str | bytes, expect: list[str], command: list[str] | None = None,
         where: str | None = None) -> None:
    path = HERE / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    CASES.append({"file": name, "command": command or ["validate"], "expect": expect,
                  "where": where})


def main() -> None:
    good = csv_text(rows())
    case("utf16.csv", good.encode("utf-16"), ["UTF-16", "save it as UTF-8"])
    case("latin1.csv", good.replace("A2001", "Ä2001").encode("latin-1"), ["not valid UTF-8"])
    case("bom_bad_n.csv", ("\ufeff" + csv_text(edit(0, n="0"))).encode("utf-8"),
         ["must be > 0"], where="row 2, column 'n'")
    case("semicolons.csv", csv_text(rows(), sep=";"), ["semicolon-separated"])
    case("tabs_named_csv.csv", csv_text(rows(), sep="\t"), ["tab-separated", ".tsv"])
    case("empty.csv", "", ["file is empty"])
    case("header_only.csv", ",".join(HEADER) + "\n", ["header but no rows"])
    case("duplicate_columns.csv", ",".join(HEADER + ["n"]) + "\n" + "x\n",
         ["appears more than once"], where="column 'n'")
    case("missing_study_column.csv", csv_text(rows(), [h for h in HEADER if h != "study"]),
         ["required column 'study' is missing"])
    case("missing_source_column.csv", csv_text(rows(), [h for h in HEADER if h != "source"]),
         ["required column 'source' is missing"])
    case("percent_in_n.csv", csv_text(edit(1, n="12%")), ["percentage"],
         where="row 3, column 'n'")
    case("na_text.csv", csv_text(edit(2, responders="n/a")), ["'n/a' is not a number"],
         where="row 4, column 'responders'")
    case("decimal_comma.csv", csv_text(edit(0, dose="1,5")), ["decimal comma", "1.5"],
         where="row 2, column 'dose'")
    case("text_in_number.csv", csv_text(edit(3, time_h="one day")), ["is not a number"],
         where="row 5, column 'time_h'")
    case("negative_n.csv", csv_text(edit(0, n="-5")), ["must be > 0"], where="row 2")
    case("zero_n.csv", csv_text(edit(1, n="0")), ["must be > 0"], where="row 3")
    case("fractional_n.csv", csv_text(edit(1, n="20.5")), ["not a whole number"])
    case("events_more_than_n.csv", csv_text(edit(0, responders="25")), ["more than n"],
         where="row 2, column 'responders'")
    case("remitters_more_than_n.csv", csv_text(edit(2, remitters="31")), ["more than n"],
         where="row 4, column 'remitters'")
    case("negative_events.csv", csv_text(edit(0, responders="-1")), ["cannot be negative"])
    case("sd_zero.csv", csv_text(edit(0, mean="-10", sd="0", mean_type="change")),
         ["sd = 0", "must be > 0"], where="column 'sd'")
    case("sd_negative.csv", csv_text(edit(0, mean="-10", sd="-3", mean_type="change")),
         ["must be > 0"], where="column 'sd'")
    case("time_before_baseline.csv", csv_text(edit(0, time_h="-2")), ["before the dose"])
    case("negative_doses_given.csv", csv_text(edit(0, doses_given="-1")), ["doses_given"])
    case("duplicate_rows.csv", csv_text(rows() + [rows()[0]]), ["duplicate row", "row 2"],
         where="row 8")
    case("unknown_dose_unit.csv", csv_text(edit(0, dose_unit="grains")),
         ["unknown dose_unit 'grains'"])
    case("dose_without_unit.csv", csv_text(edit(0, dose_unit="")), ["dose given without"])
    case("unknown_route.csv", csv_text(edit(0, route="rectal")), ["unknown route"])
    case("unknown_design.csv", csv_text([dict(r, design="cluster") for r in rows()]),
         ["unknown design"])
    case("unknown_evidence.csv", csv_text(edit(0, evidence="hearsay")), ["unknown evidence"])
    case("bad_boolean.csv", csv_text(edit(1, control="maybe")), ["not true or false"])
    case("huge_n.csv", csv_text(edit(0, n="1000000000000", responders="5")),
         ["implausibly large"])
    case("nan_mean_with_sd.csv", csv_text(edit(0, mean="NaN", sd="3", mean_type="change")),
         ["sd or se given without a mean"])
    case("infinite_sd.csv", csv_text(edit(0, mean="-3", sd="inf", mean_type="change")),
         ["not a finite number"])
    case("mean_without_type.csv", csv_text(edit(0, mean="-3", sd="2")),
         ["mean given without mean_type"])
    case("crossover_without_design.csv",
         csv_text([dict(r, design="" if r["study"] == "A2001" else "parallel")
                   for r in rows()]), ["no design", "crossover"])
    case("two_designs_in_study.csv", csv_text(edit(0, design="crossover")),
         ["several designs"])
    case("arm_dose_changes.csv", csv_text(rows() + [dict(rows()[0], time_h="48", dose="1.0")]),
         ["different dose values"])
    case("counts_without_n.csv", csv_text(edit(0, n="")), ["given without n"])
    case("missing_study_value.csv", csv_text(edit(4, study="")), ["required value is empty"],
         where="row 6, column 'study'")
    case("unknown_extension.json", good, ["unknown file type '.json'"])
    sheets = HERE / "two_sheets.xlsx"
    with pd.ExcelWriter(sheets) as xl:
        pd.DataFrame(rows()).to_excel(xl, sheet_name="trials", index=False)
        pd.DataFrame({"note": ["draft"]}).to_excel(xl, sheet_name="notes", index=False)
    CASES.append({"file": sheets.name, "command": ["validate"], "expect": ["2 sheets"],
                  "where": None})
    bad_types = pd.DataFrame(rows())
    bad_types["n"] = [20.5, 20.0, 30.0, 30.0, 25.0, 25.0]
    bad_types["responders"] = ["ten", "2", "15", "4", "9", "5"]
    bad_types.to_parquet(HERE / "wrong_types.parquet")
    CASES.append({"file": "wrong_types.parquet", "command": ["validate"],
                  "expect": ["not a whole number", "'ten' is not a number"], "where": None})
    case("too_many_rows.csv", good, ["more than 3 rows (the limit)"],
         command=["validate", "--max-rows", "3"])
    # valid tables that a particular analysis cannot use
    case("single_arm_only.csv", csv_text([r for r in rows() if r["arm"] == "ket"]),
         ["no contrasts", "single-arm"], command=["frequentist", "--measure", "OR"])
    case("single_study.csv", csv_text(rows()[:2]), ["needs at least 2 studies"],
         command=["frequentist", "--measure", "OR", "--method", "REML"])
    case("all_zero_events.csv",
         csv_text([dict(r, responders="0", remitters="0") for r in rows()]),
         ["no events in any arm"], command=["frequentist", "--measure", "OR"])
    case("all_events.csv",
         csv_text([dict(r, responders=r["n"], remitters="0") for r in rows()]),
         ["every patient in every arm"], command=["frequentist", "--measure", "RR"])
    case("mixed_dose_units.csv", csv_text(edit(2, dose="35", dose_unit="mg")),
         ["one drug, route and dose unit"],
         command=["fit", "dose-response", "--treatment", "ketamine", "--outcome", "response"])
    claims_ok = ("claims:\n  - id: X1\n    quote: q\n    model: pooled-rate\n"
                 "    outcome: response\n    time_h: 24\n    quantity: pooled_rate\n"
                 "    region: {region}\n")
    case("claims_bad_region.yaml", claims_ok.format(region="[0.9, 0.1]"),
         ["claim 'X1', field 'region'", "below high"], command=["claims", "--claims"])
    case("claims_unknown_model.yaml",
         claims_ok.format(region="[0, 1]").replace("pooled-rate", "oracle"),
         ["claim 'X1', field 'model'", "unknown model 'oracle'"], command=["claims", "--claims"])
    case("claims_not_yaml.yaml", "claims: [unclosed\n", ["not valid YAML"],
         command=["claims", "--claims"])
    (HERE / "expected.json").write_text(json.dumps(CASES, indent=2) + "\n")
    print(f"wrote {len(CASES)} cases")


if __name__ == "__main__":
    main()
