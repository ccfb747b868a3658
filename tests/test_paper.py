"""Paper numbers: generated from the recorded results, escaped for LaTeX, and loud when missing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from dbalib.study import paper


# the paper's sections and any drafted for it in paper/next (none at present) are held to the same rules
SECTION_FILES = [*sorted((paper.PAPER_DIR / "sections").glob("*.tex")), *sorted((paper.PAPER_DIR / "next").glob("*.tex"))]


def test_tex_escape():
    assert paper.tex_escape("50% of r_1 & {x}") == r"50\% of r\_1 \& \{x\}"


def test_results_become_macros_and_claims(tmp_path):
    record = {
        "parameters": {"SEEDS": [0, 1, 2], "ROUNDS": 70},
        "runs": {"DBA": {"pretrained_clean_acc": 0.9411, "clean_acc_final": 0.97, "clean_acc_min": 0.47,
                         "clean_acc_min_round": 12, "significant_drops": 1, "last_attack": 18, "final_round": 70,
                         "clean_drops": {"12": 0.473},
                         "triggers": {"global": {"peak": 0.914, "peak_round": 18, "final": 0.254}}}},
        "claims": [{"section": "VI-A", "claim": "one drop", "evidence": "r12: 47% fall", "agrees": True}],
        "claims_agreeing": 1, "claims_total": 1,
    }
    (tmp_path / "01_single_shot_concentrated.json").write_text(json.dumps(record))
    numbers, claims = paper.results_numbers(tmp_path)
    assert numbers["a.dba.global.peak"] == "91.4" and numbers["a.dba.global.peak-round"] == "18"
    assert numbers["a.dba.pretrained-clean-acc"] == "94.1" and numbers["a.dba.drop.12"] == "47.3"
    assert numbers["a.seeds"] == "3" and numbers["a.claims.agree"] == "1"
    text = paper.claims_tex(claims["A"])
    assert r"\item[\agree] one drop" in text and r"47\% fall" in text


@pytest.mark.skipif(shutil.which("latexmk") is None, reason="LaTeX is not installed (make paper installs it)")
def test_a_number_that_was_not_generated_fails_the_build(tmp_path):
    preamble = (PAPER_PREAMBLE := (paper.PAPER_DIR / "main.tex").read_text().split(r"\input{generated/numbers.tex}")[0])
    assert r"\newcommand{\val}" in preamble
    doc = tmp_path / "doc.tex"
    doc.write_text(PAPER_PREAMBLE + r"\dbaset{x.y}{42}\begin{document}\val{x.y} \val{not.there}\end{document}")
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", doc.name], cwd=tmp_path,
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "number `not.there' was not generated" in proc.stdout
    doc.write_text(PAPER_PREAMBLE + r"\dbaset{x.y}{42}\begin{document}\val{x.y}\end{document}")
    ok = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", doc.name], cwd=tmp_path,
                        capture_output=True, text=True)
    assert ok.returncode == 0


def test_the_paper_types_no_numbers_by_hand():
    """Digits in the text must come from \\val{...}; math, references and lengths are exempt."""
    import re

    files = [paper.PAPER_DIR / "main.tex", *SECTION_FILES]
    typed = []
    for path in files:
        text = path.read_text()
        if path.name == "main.tex":
            text = text[text.index(r"\begin{document}"):]
        for number, line in enumerate(text.splitlines(), 1):
            line = re.sub(r"(?<!\\)%.*", "", line)
            line = re.sub(r"\\(val|pct|pctest|ptsest|ref|label|cite|input|includegraphics|texttt|claim|restson|bibliography\w*)\*?"
                          r"(\[[^]]*\])?\{(?:[^{}]|\{\})*\}", "", line)  # a command may hold -{}-
            line = re.sub(r"(study|DBA paper's) Fig\.~\d+", "", line)  # the study's own figure numbers
            line = re.sub(r"\\begin\{equation\}.*|^\s*G\^\{t\+1\}.*|\$[^$]*\$|\d+(\.\d+)?(em|cm|pt)|\[t\]", "", line)
            if re.search(r"\d", line):
                typed.append(f"{path.name}:{number}: {line.strip()}")
    assert not typed, "numbers typed by hand:\n" + "\n".join(typed)


@pytest.mark.skipif(shutil.which("latexmk") is None, reason="LaTeX is not installed (make paper installs it)")
def test_a_paragraph_whose_verdict_changed_fails_the_latex_build_too(tmp_path):
    preamble = (paper.PAPER_DIR / "main.tex").read_text().split(r"\input{generated/numbers.tex}")[0]
    doc = tmp_path / "doc.tex"

    def build(body: str) -> subprocess.CompletedProcess:
        doc.write_text(preamble + r"\dbaset{a.claim.1.outcome}{differs}\dbaset{vii.x.rfa.outcome}{not stopped}"
                       r"\begin{document}" + body + r"\end{document}")
        return subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", doc.name], cwd=tmp_path,
                              capture_output=True, text=True, env={**os.environ, "max_print_line": "1000"})

    assert build(r"A \restson{a.claim.1}{differs}\restson{vii.x.rfa}{not stopped} B").returncode == 0
    wrong = build(r"A \restson{a.claim.1}{agrees} B")
    assert wrong.returncode != 0 and "the text rests on a.claim.1 being `agrees', the runs say `differs'" in wrong.stdout
    missing = build(r"\restson{b.claim.9}{agrees}")
    assert missing.returncode != 0 and "`b.claim.9' has no generated verdict" in missing.stdout


def test_a_paragraph_whose_verdict_changed_stops_paper_numbers(tmp_path):
    """A paragraph interpreting a verdict declares it (\\restson{key}{outcome}); when the results
    say otherwise, generating the numbers fails, naming the file and line, before anything is written."""
    text = tmp_path / "x.tex"
    text.write_text("The drop repeats.\n\\restson{a.claim.1}{differs}% the first claim\n"
                    "% \\restson{a.claim.9}{agrees} is a comment\n\\restson{vii.x.rfa}{not stopped}\n")
    numbers = {"a.claim.1.outcome": "differs", "vii.x.rfa.outcome": "not stopped"}
    assert paper.check_text(numbers, [text]) == 2
    with pytest.raises(paper.PaperTextError, match=r"x.tex:2: the text rests on a.claim.1 being 'differs'; "
                                                   r"the results say 'agrees'"):
        paper.check_text({**numbers, "a.claim.1.outcome": "agrees"}, [text])
    with pytest.raises(paper.PaperTextError, match=r"x.tex:4: \\restson\{vii.x.rfa\} names no verdict"):
        paper.check_text({"a.claim.1.outcome": "differs"}, [text])
    with pytest.raises(paper.PaperTextError):
        paper.write_all(tmp_path / "generated", paper.RESULTS_DIR, text=[text])
    assert not (tmp_path / "generated").exists()


def test_the_text_says_what_the_runs_say_and_every_claim_is_read_against_its_verdict(tmp_path):
    """The paper's own text passes the check, and every claim it prints is interpreted somewhere
    under a \\restson of its verdict (the claims tables say the verdict; the prose must not contradict it)."""
    numbers = paper.write_all(tmp_path, paper.RESULTS_DIR)
    assert paper.check_text(numbers) >= len(paper.rests_on())
    guarded = {key for _, _, key, _ in paper.rests_on()}
    _, claims = paper.results_numbers()
    printed = {f"{section.lower()}.claim.{i}" for section, items in claims.items() for i in range(1, len(items) + 1)}
    assert printed and not printed - guarded, f"claims no paragraph rests on: {sorted(printed - guarded)}"
    assert any(key.startswith("vii.") and ".claim." not in key for key in guarded)  # defence cells too


def test_notebook_parameters_keep_only_plain_upper_case_constants():
    from dbalib.study.reporting import notebook_parameters

    namespace = {"SEEDS": (0, 1), "ROUNDS": 30, "NAME": "x", "GRID": [[1, 2], [3]], "CLAIMS": [object()],
                 "lower": 1, "_PRIVATE": 2}
    assert notebook_parameters(namespace) == {"SEEDS": [0, 1], "ROUNDS": 30, "NAME": "x", "GRID": [[1, 2], [3]]}


def test_printed_commands_paste_and_run():
    """'--' inside \\texttt becomes an en-dash in the PDF; a command copied from it then fails."""
    import re

    files = [paper.PAPER_DIR / "main.tex", *SECTION_FILES]
    bad = [f"{path.name}: {m.group(0)}" for path in files
           for m in re.finditer(r"\\texttt\{[^}]*--[^}]*\}", path.read_text())]
    assert not bad, "write -{}- for a double dash in a command:\n" + "\n".join(bad)


def test_the_text_names_a_claims_verdict_only_through_its_generated_macro():
    """A verdict typed into a section's text would survive a change of the results; the text uses
    \\val{<section>.claim.<n>.verdict} instead (generated from results/*.json)."""
    import re

    for name in ("A", "B", "C", "D", "defenses-results", "factors-results", "summary-results", "robustness-results",
                 "persistence", "persistence-results"):
        path = paper.PAPER_DIR / "sections" / f"{name}.tex"
        if path.is_file():
            typed = re.findall(r"\\(agree|disagree|inconclusive)\b", path.read_text())
            assert not typed, f"{path.name} types a verdict: {typed}"


def test_every_claim_has_a_verdict_macro(tmp_path):
    numbers, claims = paper.results_numbers()
    for section, items in claims.items():
        for i, claim in enumerate(items, 1):
            key = f"{section.lower()}.claim.{i}.verdict"
            assert numbers[key] == paper.VERDICT_MACROS[paper.claim_verdict(claim)]


NUMBER_WORDS = ("two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "twenty",
                "thirty", "forty", "fifty", "hundred", "twice", "thrice", "dozen", "half", "quarter")


def test_numbers_in_words_are_generated_too():
    """A number written in words must come from a generated macro (``<key>.word``) like any other
    number, everywhere in the paper's text (main.tex from \\begin{document} and every section).
    Ordinals ('the second attack') and 'one' are left to the prose."""
    import re

    texts = {f"{path.parent.name}/{path.name}": path.read_text() for path in SECTION_FILES}
    main = (paper.PAPER_DIR / "main.tex").read_text()
    texts["main.tex"] = main[main.index(r"\begin{document}"):]
    pattern = re.compile(r"\b(" + "|".join(NUMBER_WORDS) + r")\b", re.I)
    typed = [f"{name}: {m.group(0)!r} in '{text[max(0, m.start() - 30):m.end() + 30]}'"
             for name, text in texts.items()
             for m in pattern.finditer(re.sub(r"\\(val|pct|ref|label|cite|input)\{[^}]*\}|(?<!\\)%.*", "", text))]
    assert not typed, "numbers in words typed by hand:\n" + "\n".join(typed)


def test_number_words_come_from_the_configs_and_results():
    assert [paper.in_words(n) for n in (0, 4, 9, 20, 50, 77)] == ["zero", "four", "nine", "twenty", "fifty", "77"]
    words = paper.word_numbers()
    assert words["cfg.trigger-parts.word"] == "four" and words["b.spacing.word"] == "nine"
    assert words["d.cycles.word"] == "three" and words["a.later.word"] == "fifty"


def test_persistence_macros_and_table_come_from_notebook_08s_rows(tmp_path):
    import json

    rows = [{"factor": "VI-A", "value": "baseline", "seeds": 10, "dba": 0.25, "dba_lo": 0.1, "dba_hi": 0.4,
             "cba": 0.12, "cba_lo": 0.05, "cba_hi": 0.19, "gap": 0.13, "gap_lo": -0.02, "gap_hi": 0.28,
             "gap_excludes_zero": False, "method": "t"},
            {"factor": "gamma", "value": 200.0, "seeds": 10, "dba": 0.6, "dba_lo": 0.5, "dba_hi": 0.7,
             "cba": 0.2, "cba_lo": 0.1, "cba_hi": 0.3, "gap": 0.4, "gap_lo": 0.3, "gap_hi": 0.5,
             "gap_excludes_zero": True, "gap_per_seed": [0.31, 0.52, 0.4],
             "gap_change": 0.27, "gap_change_lo": 0.2, "gap_change_hi": 0.34,
             "gap_change_excludes_zero": True, "method": "t"}]
    rows[0] |= {"gap_change": float("nan"), "gap_change_excludes_zero": float("nan")}  # pandas' missing value
    assert paper.persistence_numbers(tmp_path) == {} and "midrule" in paper.persistence_tex(tmp_path)
    (tmp_path / "08_persistence_sensitivity.json").write_text(json.dumps({"extra": {"persistence": rows}}))
    numbers = paper.persistence_numbers(tmp_path)
    assert numbers["p.variants.word"] == "one" and numbers["p.factors.word"] == "one"  # besides the VI-A setting
    assert numbers["p.vi-a.baseline.gap.estimate"] == "13.0" and numbers["p.vi-a.baseline.gap.excludes-zero"] == "no"
    assert numbers["p.gamma.200.dba.lo"] == "50.0" and numbers["p.gamma.200.gap.excludes-zero"] == "yes"
    assert numbers["p.gamma.200.gap.seed-min"] == "31.0" and numbers["p.gamma.200.gap.seed-max"] == "52.0"
    assert numbers["p.all-variants.gap.seed-max"] == "52.0"
    assert "p.vi-a.baseline.gap.seed-max" not in numbers  # that row records no per-seed gaps
    assert numbers["p.gamma.200.change.estimate"] == "27.0" and numbers["p.gamma.200.change.excludes-zero"] == "yes"
    assert not any(key.startswith("p.vi-a.baseline.change") for key in numbers)
    table = paper.persistence_tex(tmp_path)
    assert "VI-A setting & $25.0$ [$10.0$, $40.0$]" in table and r"gamma $= 200$" in table
    assert "$13.0$ [$-2.0$, $28.0$] & -- & 10" in table and "$27.0$ [$20.0$, $34.0$] & 10" in table
    assert table.count(r"\\") == 3  # the header and one line per variant


def test_claim_notes_read_as_words_in_the_papers_units():
    _readable = paper._readable
    assert _readable("seeds [0, 1, 2, 3] never reach it") == "seeds 0--3 never reach it"
    assert _readable("cut at the possible range [0, 1]") == \
        "interval cut at 0 to 100 %, the range the quantity can take"
    assert "-100 to 100 pts" in _readable("t-interval; cut at the possible range [-1, 1]")
    assert "0 to 100 pts" in _readable("cut at the possible range [0, 1]", "pts")  # a distance in points
    assert _readable("estimate None") == "estimate n/a"


def test_every_figure_and_table_is_referenced_in_the_text():
    import re

    files = [paper.PAPER_DIR / "main.tex", *SECTION_FILES]
    text = "\n".join(re.sub(r"(?<!\\)%.*", "", path.read_text()) for path in files)
    labels = re.findall(r"\\label\{((?:fig|tab):[^}]*)\}", text)
    assert labels, "no figure or table labels found"
    unreferenced = [label for label in labels if not re.search(r"\\ref\{" + re.escape(label) + r"\}", text)]
    assert not unreferenced, f"figures or tables the text never refers to: {unreferenced}"


def test_negative_numbers_print_with_a_minus_sign(tmp_path):
    assert paper._minus("-7.6") == r"\ensuremath{-}7.6" and paper._minus("7.6") == "7.6"
    assert paper._minus("a-1") == "a-1" and paper._minus("--") == "--"  # only a leading sign of a number
    paper.write_all(tmp_path, paper.RESULTS_DIR)
    assert "}{-" not in (tmp_path / "numbers.tex").read_text()


def test_a_claim_of_several_comparisons_lists_each_once():
    part = {"quantity": "gap, gamma = 50", "estimate": 0.01, "interval": [0.0, 0.02], "lo": 0.0, "hi": 0.02,
            "threshold": {"name": "paper gap", "value": 0.68, "side": "above"}, "unit": "pts", "verdict": "differs"}
    claim = {"claim": "some variant reaches it", "verdict": "differs", "method": "t-interval (9 df)", "n_seeds": 10,
             "quantity": part["quantity"], "estimate": 0.01, "interval": [0.0, 0.02], "unit": "pts",
             "parts": [part, part | {"quantity": "gap, gamma = 200", "estimate": 0.1}]}
    text = paper.claims_tex([claim], "P")
    assert text.count("gap, gamma = 50") == 1 and text.count("gap, gamma = 200") == 1
    assert "2 comparisons (t-interval (9 df), 10 seeds)" in text


def test_factor_macros_and_table_come_from_notebook_06s_effects(tmp_path):
    import json

    def row(factor, value, default=False, **fields):
        out = {"schedule": "single_shot", "factor": factor, "value": value, "default": default, "seeds": 5}
        for name, (est, lo, hi) in fields.items():
            out |= {name: est, f"{name}_lo": lo, f"{name}_hi": hi, f"{name}_excludes_zero": lo > 0 or hi < 0}
        return out

    rows = [row("size", 4, True, gap=(0.05, 0.01, 0.09)), row("scale", 100.0, True, gap=(0.05, 0.01, 0.09)),
            row("size", 2, change_after=(-0.1, -0.3, 0.1), change_later=(-0.2, -0.3, -0.1), gap=(-0.2, -0.3, -0.1)),
            row("scale", 10.0, change_after=(-0.7, -0.8, -0.6), change_later=(0.0, -0.1, 0.1), gap=(0.0, -0.1, 0.1)),
            row("interval", 4, change_after=(0.1, 0.05, 0.15), change_later=(0.05, 0.01, 0.09)),
            row("alpha", 0.1, gap=(0.3, 0.2, 0.4)) | {"schedule": "multi_shot", "default": False}]
    assert paper.factor_numbers(tmp_path) == {}
    (tmp_path / "06_trigger_factors.json").write_text(json.dumps({"extra": {"effects": rows}}))
    numbers = paper.factor_numbers(tmp_path)
    assert numbers["f.single-shot.size.2.change-later.estimate"] == "-20.0"
    assert numbers["f.single-shot.size.2.change-later.hi"] == "-10.0"
    assert numbers["f.multi-shot.alpha.0-1.gap.lo"] == "20.0"
    # the default setting counts once although two factors list it
    assert numbers["f.single-shot.gap.settings.word"] == "three" and numbers["f.single-shot.gap.dba-ahead.word"] == "one"
    assert numbers["f.single-shot.gap.cba-ahead.word"] == "one" and numbers["f.single-shot.gap.unresolved.word"] == "one"
    assert numbers["f.single-shot.change-later.settings.word"] == "three"
    assert (numbers["f.single-shot.change-later.up.word"], numbers["f.single-shot.change-later.down.word"]) == ("one", "one")
    assert numbers["f.single-shot.change-after.down.word"] == "one" and numbers["f.multi-shot.gap.dba-ahead.word"] == "one"
    assert numbers["f.multi-shot.change-later.settings.word"] == "zero"
    table = paper.factor_effects_tex(tmp_path)
    assert r"size & $2$ & $-10.0$ [$-30.0$, $10.0$] & \textbf{\textminus 20.0 [\textminus 30.0, \textminus 10.0]} & 5" in table
    assert table.count(r"\emph{single-shot DBA}") == 1 and table.count(r"\emph{continuous DBA}") == 1
    assert "& $4$ &" not in table.replace("interval & $4$", "")  # no row for a default


def test_factor_ranking_and_intervals_are_generated_in_the_results_order(tmp_path):
    rows = [{"factor": "size", "value": 2, "attack": "DBA", "asr_after": 0.5, "asr_after_lo": 0.4, "asr_after_hi": 0.6,
             "asr_later": 0.3, "asr_later_lo": 0.2, "asr_later_hi": 0.4, "clean_final": 0.95, "seeds": 5}]
    record = {"parameters": {"SEEDS": [0, 1, 2, 3, 4]}, "runs": {}, "claims": [],
              "extra": {"single_shot": rows, "importance": {"scale": 0.1, "poison_ratio": 0.62, "size": 0.3}}}
    (tmp_path / "06_trigger_factors.json").write_text(json.dumps(record))
    numbers, _ = paper.results_numbers(tmp_path)
    assert numbers["f.importance.ranking"] == "poison ratio (62.0), size (30.0) and scale (10.0)"
    assert numbers["f.single-shot.size.dba.2.asr-later"] == numbers["f.single-shot.size.dba.2.asr-later.estimate"] == "30.0"
    assert (numbers["f.single-shot.size.dba.2.asr-after.lo"], numbers["f.single-shot.size.dba.2.asr-after.hi"]) == \
        ("40.0", "60.0")
    assert "f.single-shot.size.dba.2.clean-final.lo" not in numbers  # the table has no interval for it


def test_the_evaluation_set_is_named_by_its_size_not_by_the_zero_that_means_all(tmp_path):
    for name, samples in (("06_trigger_factors", 0), ("05_defenses", 1000)):
        (tmp_path / f"{name}.json").write_text(json.dumps({"parameters": {"TEST_SAMPLES": samples}, "claims": []}))
    numbers, _ = paper.results_numbers(tmp_path)
    assert numbers["f.test-images"] == "10{,}000" and numbers["f.param.test-samples"] == "0"
    assert numbers["vii.test-images"] == "1{,}000"


def _matrix_row(attack, defense, asr, lo, hi, clean=0.97):
    return {"attack": attack, "defense": defense, "asr_attack_peak": asr, "asr_attack_peak_lo": lo,
            "asr_attack_peak_hi": hi, "asr_final": asr / 2, "asr_final_lo": lo / 2, "asr_final_hi": hi / 2,
            "clean_final": clean, "clean_final_lo": clean - 0.01, "clean_final_hi": clean + 0.01, "seeds": 3}


def test_defence_verdicts_macros_and_table_come_from_notebook_05s_intervals(tmp_path):
    rows = [_matrix_row("clean", "fedavg", 0.01, 0.0, 0.02), _matrix_row("clean", "median", 0.01, 0.0, 0.02, 0.95),
            _matrix_row("multi_shot_dba", "fedavg", 0.8, 0.7, 0.9),        # interval above 20%: not stopped
            _matrix_row("multi_shot_dba", "median", 0.05, 0.01, 0.09),     # wholly below: stopped
            _matrix_row("multi_shot_dba", "krum", 0.15, -0.05, 0.35),      # straddles: inconclusive
            _matrix_row("single_shot_dba", "fedavg", 0.3, 0.2, 0.4), _matrix_row("single_shot_dba", "median", 0.02, 0.0, 0.04)]
    extra = {"matrix": rows, "consensus_tuning": [{"ratio": 0.5, "clean_cost": 0.004, "asr_mean": 0.12}],
             "tradeoff": [{"rule": "norm_clip", "key": "norm_bound_factor", "value": 1.5, "attack": "multi_shot_dba",
                           "asr_final": 0.4, "asr_final_lo": 0.3, "asr_final_hi": 0.5, "clean_final": 0.96,
                           "benign_rejected": 0.02, "malicious_rejected": 0.1}],
             "attacker_counts": [{"attack": "multi_shot_dba", "attackers": 2, "defense": "median", "asr_final": 0.1,
                                  "asr_final_lo": 0.05, "asr_final_hi": 0.15, "asr_attack_peak_lo": 0.1,
                                  "asr_attack_peak_hi": 0.19},
                                 {"attack": "multi_shot_dba", "attackers": 2, "defense": "fedavg", "asr_final": 0.1,
                                  "asr_final_lo": 0.05, "asr_final_hi": 0.15, "asr_attack_peak_lo": 0.1,
                                  "asr_attack_peak_hi": 0.21}],
             "root_set": {"samples": 100, "class_counts": [0, 30, 20, 10, 0, 0, 0, 25, 0, 15]}}
    assert paper.defense_numbers(tmp_path) == {}
    record = {"parameters": {"STOP_BELOW": 0.2, "TUNING_SEEDS": [100, 101, 102]}, "extra": extra}
    (tmp_path / "05_defenses.json").write_text(json.dumps(record))
    numbers = paper.defense_numbers(tmp_path)
    assert numbers["vii.multi-shot-dba.stopped.list"] == r"\texttt{median}"
    assert numbers["vii.multi-shot-dba.not-stopped.list"] == r"\texttt{fedavg}"
    assert numbers["vii.multi-shot-dba.inconclusive.list"] == r"\texttt{krum}"
    assert numbers["vii.single-shot-dba.stopped.word"] == "one" and numbers["vii.single-shot-dba.inconclusive.list"] == "none"
    assert "vii.clean.stopped.list" not in numbers  # no attack, nothing to stop
    assert numbers["vii.multi-shot-dba.krum.asr-attack-peak.lo"] == "-5.0" and numbers["vii.clean.median.clean-final.estimate"] == "95.0"
    assert numbers["vii.tuning.0-5.clean-cost"] == "0.4" and numbers["vii.tuning.seeds.word"] == "three"
    assert numbers["vii.tradeoff.norm-clip.1-5.multi-shot-dba.asr-final.hi"] == "50.0"
    assert numbers["vii.tradeoff.norm-clip.1-5.multi-shot-dba.benign-rejected"] == "2.0"
    assert numbers["vii.count.multi-shot-dba.2.median.asr-final.estimate"] == "10.0"
    assert numbers["vii.count.multi-shot-dba.2.stopped.list"] == r"\texttt{median}"  # fedavg's peak straddles 20%
    assert numbers["vii.count.multi-shot-dba.stopped.text"] == r"with two attackers a round by \texttt{median}"
    assert numbers["vii.root.samples"] == "100" and numbers["vii.root.digits"] == "1, 2, 3, 7 and 9"
    # median stops both attacks; fedavg stops neither, krum is missing a column
    assert numbers["vii.every-attack.stopped.list"] == r"\texttt{median}" and numbers["vii.every-attack.stopped.word"] == "one"
    assert numbers["vii.tradeoff.destroyed.list"] == "none"
    table = paper.matrix_tex(record)
    assert r"\texttt{median} & \textbf{2.0 [0.0, 4.0]} & \textbf{5.0 [1.0, 9.0]} & $95.0$ [$94.0$, $96.0$] \\" in table
    assert r"\texttt{krum} & -- & \textit{15.0 [\textminus 5.0, 35.0]} & -- \\" in table
    assert r"\texttt{fedavg} & $30.0$ [$20.0$, $40.0$]" in table  # not stopped: plain
    assert table.index("single-shot DBA") < table.index("continuous DBA") < table.index("no attack (clean accuracy)")
    record["parameters"]["CONSENSUS_RATIO"] = 0.5
    assert r"$0.5$ & $0.4$ & $12.0$ & yes \\" in paper.consensus_tuning_tex(record)


def test_a_destroyed_model_is_its_own_verdict_in_the_macros_and_the_table(tmp_path):
    low = _matrix_row("multi_shot_dba", "foolsgold", 0.05, 0.01, 0.09, clean=0.1)  # below 20%, but at chance
    lost = {"attack": "multi_shot_dba", "defense": "krum", "seeds": 0, "diverged_seeds": 3, "destroyed_seeds": 3}
    rows = [_matrix_row("multi_shot_dba", "median", 0.05, 0.01, 0.09) | {"destroyed_seeds": 0},
            low | {"collapsed_seeds": 1, "destroyed_seeds": 1}, lost]
    record = {"parameters": {"STOP_BELOW": 0.2}, "extra": {"matrix": rows}}
    (tmp_path / "05_defenses.json").write_text(json.dumps(record))
    numbers = paper.defense_numbers(tmp_path)
    assert numbers["vii.multi-shot-dba.stopped.list"] == r"\texttt{median}"
    assert numbers["vii.multi-shot-dba.model-destroyed.list"] == r"\texttt{foolsgold} and \texttt{krum}"
    assert numbers["vii.multi-shot-dba.model-destroyed.word"] == "two"
    assert numbers["vii.destroyed.word"] == "two"
    assert numbers["vii.destroyed.list"] == r"\texttt{foolsgold} and \texttt{krum} against continuous DBA"
    assert numbers["vii.every-attack.stopped.list"] == r"\texttt{median}"  # destroyed never counts as stopped
    table = paper.matrix_tex(record)
    assert r"\texttt{foolsgold} & $5.0$ [$1.0$, $9.0$]$^\dagger$ \\" in table  # not bold: never "stopped"
    assert r"\texttt{krum} & diverged$^\dagger$ \\" in table
    assert r"\texttt{median} & \textbf{5.0 [1.0, 9.0]} \\" in table


def test_trade_off_settings_with_a_destroyed_seed_are_named_with_their_parameter(tmp_path):
    def row(rule, value, attack, destroyed=0, diverged=0):
        return {"rule": rule, "value": value, "attack": attack, "asr_final": 0.1, "clean_final": 0.9,
                "destroyed_seeds": destroyed, "diverged_seeds": diverged}
    tradeoff = [row("weak_dp_dba", 0.03, "clean", 2, 1), row("weak_dp_dba", 0.01, "clean"),
                row("norm_clip", 1.5, "multi_shot_dba", 1), row("krum", 2, "multi_shot_dba"),
                row("fltrust", 25, "clean", 1)]
    record = {"parameters": {"SEEDS": [0, 1, 2], "DP_RULES": ["weak_dp_dba"], "NORM_RULES": ["norm_clip"],
                             "KRUM_RULES": ["krum"], "ROOT_RULES": ["fltrust"]}, "extra": {"matrix": [], "tradeoff": tradeoff}}
    (tmp_path / "05_defenses.json").write_text(json.dumps(record))
    text = paper.defense_numbers(tmp_path)["vii.tradeoff.destroyed.list"]
    assert text == (r"\texttt{weak\_dp\_dba} at $\sigma = 0.03$ without attack (two of three seeds destroyed, one of them"
                    r" diverged), \texttt{norm\_clip} at $M = 1.5\times$ under continuous DBA (one of three seeds destroyed)"
                    r" and \texttt{fltrust} at a root set of $25$ images without attack (one of three seeds destroyed)")


def test_a_stop_verdict_is_a_statement_about_the_interval():
    from dbalib.study.defense_eval import DESTROYED, NOT_STOPPED, STOPPED, stop_verdict
    from dbalib.study.stats import INCONCLUSIVE

    assert stop_verdict(0.01, 0.19, 0.2) == STOPPED
    assert stop_verdict(0.2, 0.5, 0.2) == NOT_STOPPED
    assert stop_verdict(0.1, 0.3, 0.2) == INCONCLUSIVE  # the mean alone would say "stopped" or not
    assert stop_verdict(float("nan"), float("nan"), 0.2) == INCONCLUSIVE  # one seed: no interval
    assert stop_verdict(0.01, 0.19, 0.2, destroyed=1) == DESTROYED  # a model at chance level stops nothing
    assert stop_verdict(0.01, 0.19, 0.2, destroyed=float("nan")) == STOPPED  # older rows: no count recorded


def test_every_claim_the_text_names_is_printed_under_that_name():
    """A claim is named in the text (\\claim{A2}) by the id its section prints it with; a name no
    generated claim carries would point the reader nowhere. The defence statements print as E1,
    E2, ... ("VII1" would read as "VIII")."""
    import re

    assert paper.claim_id("VII", 1) == r"\claim{E1}" and paper.claim_id("A", 2) == r"\claim{A2}"
    _, claims = paper.results_numbers()
    printed = {paper.claim_id(section, i) for section, items in claims.items() for i in range(1, len(items) + 1)}
    for folder in ("sections", "next"):
        for path in sorted((paper.PAPER_DIR / folder).glob("*.tex")):
            named = set(re.findall(r"\\claim\{[A-Z]+\d+\}", path.read_text()))
            assert named <= printed, f"{folder}/{path.name} names claims no section prints: {sorted(named - printed)}"
