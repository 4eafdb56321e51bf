"""Observers: console, JSONL metrics file, run report, Weights & Biases, TensorBoard.
Add one with a class and a YAML file."""

from rlvr.observers.base import EVENTS, Observers
from rlvr.observers.console import ConsoleObserver
from rlvr.observers.jsonl import JsonlObserver
from rlvr.observers.report import ReportObserver
from rlvr.observers.tensorboard import TensorBoardObserver
from rlvr.observers.wandb import WandbObserver

__all__ = ["EVENTS", "ConsoleObserver", "JsonlObserver", "Observers", "ReportObserver", "TensorBoardObserver",
           "WandbObserver"]
