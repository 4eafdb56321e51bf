"""Batched evaluation must equal one-at-a-time evaluation: left padding, not right (a trap of the seeds'
evaluator), and scoring by value, not string ("18" vs "18.0"). A progress bar names the evaluation without
changing its results; every row's completion is saved unless capped."""

from __future__ import annotations

from datasets import Dataset

from rlvr.data import PromptTemplate
from rlvr.evaluation import Evaluator
from rlvr.model import HFModel
from rlvr.scoring import NumberVerifier, Scorer
from rlvr.scoring.extract import extract_answer


class ExactNumber(NumberVerifier):
    def __call__(self, answer, row):
        return float(float(answer) == float(row["answer"]))


def test_batched_equals_one_by_one(tiny_model_dir):
    model, tok = HFModel(name_or_path=str(tiny_model_dir)).load()
    prompt = PromptTemplate()
    questions = ["1 + 1 =", "What is twelve plus thirty?", "9", "A much longer question about 7 apples and 5 pears"]
    rows = Dataset.from_list([{"prompt": prompt.messages(q), "question": q, "answer": "2", "task": "t", "entry": "{}"}
                              for q in questions])
    one = Evaluator(batch_size=1, max_new_tokens=12).generate(model, tok, list(rows["prompt"]))
    many = Evaluator(batch_size=4, max_new_tokens=12).generate(model, tok, list(rows["prompt"]))
    assert [t for t, _, _ in one] == [t for t, _, _ in many]
    assert [n for _, n, _ in one] == [n for _, n, _ in many]


def test_scoring_by_value_not_string():
    scorer = Scorer(PromptTemplate().answer_format, ExactNumber())
    assert scorer("so the answer is 18.0", {"answer": "18"}).correct
    assert extract_answer("total: 18.0", PromptTemplate().answer_format) == "18"


def _rows(n: int) -> Dataset:
    prompt = PromptTemplate()
    questions = [f"What is {i} plus {i}?" for i in range(n)]
    return Dataset.from_list([{"prompt": prompt.messages(q), "question": q, "answer": str(2 * int(q.split()[2])),
                               "task": "t", "entry": "{}"} for q in questions])


def test_progress_bar_names_the_evaluation_and_leaves_results_unchanged(tiny_model_dir, capsys):
    model, tok = HFModel(name_or_path=str(tiny_model_dir)).load()
    rows, scorer = _rows(5), Scorer(PromptTemplate().answer_format, ExactNumber())
    shown = Evaluator(batch_size=2, max_new_tokens=6).evaluate(model, tok, rows, scorer, "baseline")
    err = capsys.readouterr().err
    assert "eval baseline: 100%" in err and "3/3" in err and "batch" in err  # 5 rows, 2 per batch
    hidden = Evaluator(batch_size=2, max_new_tokens=6, progress=False).evaluate(model, tok, rows, scorer, "baseline")
    assert capsys.readouterr().err == ""
    assert shown.samples == hidden.samples
    assert shown.summary() | {"extra": {}} == hidden.summary() | {"extra": {}}  # timings aside, identical


def test_every_row_is_saved_by_default_and_a_cap_still_works(monkeypatch):
    monkeypatch.setattr(Evaluator, "generate", lambda self, model, tok, prompts, num_samples=1, desc="eval":
                        [("so 4", 2, False)] * len(prompts))
    rows, scorer = _rows(40), Scorer(PromptTemplate().answer_format, ExactNumber())
    saved = Evaluator().evaluate(None, None, rows, scorer, "final").samples
    assert [s["question"] for s in saved] == rows["question"]
    assert saved[2] == {"question": "What is 2 plus 2?", "gold": "4", "completion": "so 4", "extracted": "4",
                        "status": "correct"}
    assert len(Evaluator(num_samples_saved=3).evaluate(None, None, rows, scorer, "final").samples) == 3
