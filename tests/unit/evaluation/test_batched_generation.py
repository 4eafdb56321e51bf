"""Batched evaluation must equal one-at-a-time evaluation: left padding, not right (a trap of the seeds'
evaluator), and scoring by value, not string ("18" vs "18.0")."""

from __future__ import annotations

from datasets import Dataset

from rlvr.data import PromptTemplate
from rlvr.evaluation import Evaluator
from rlvr.model import HFModel
from rlvr.scoring import Scorer
from rlvr.scoring.extract import extract_answer


class ExactNumber:
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
