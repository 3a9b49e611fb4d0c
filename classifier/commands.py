"""Classifier commands of the `yuqing` CLI (registered by pipeline.py): train, classify and correct.
Each builds what it needs, calls the classifier modules and prints; no business rules here."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from classifier.classify import Classifier
from classifier.corrections import CorrectionError, correction_examples, record_correction
from classifier.datasets import DatasetError
from classifier.evaluate import add_evaluate_command
from classifier.jsonl import chunks, classify_lines
from classifier.model import ModelNotFoundError, TextModel, active_version
from classifier.shared_training import DEFAULT_DATA_ROOT, train_with_shared
from classifier.train import Example, load_examples, seed_files, train
from config.env import Environment
from config.loader import load_config
from config.schema import Settings
from models.db import make_engine, session_scope
from models.migrate import is_up_to_date, open_database

log = logging.getLogger("yuqing")


def model_dir(settings: Settings) -> Path:
    return Path(settings.classifier.model_dir)


def load_model(settings: Settings, *, train_if_missing: bool) -> TextModel:
    try:
        return TextModel.load(model_dir(settings))
    except ModelNotFoundError:
        if not train_if_missing:
            raise
    log.info("no trained model yet: training the default model from the shipped seed corpus")
    return train(load_examples(seed_files()), model_dir(settings))


def cmd_train(args: argparse.Namespace) -> int:
    settings = load_config(args.config).settings
    folder = model_dir(settings)
    if args.if_missing:
        try:
            version = active_version(folder)
            TextModel.load(folder, version)
            print(json.dumps({"model_version": version, "trained": False}))
            return 0
        except ModelNotFoundError:
            pass
    files = ([] if args.no_seed else seed_files()) + [Path(p) for p in args.data or []]
    started = time.perf_counter()
    examples = load_examples(files)
    corrected = [] if args.no_corrections else stored_corrections()
    if args.with_shared_data:
        root = Path(args.data_root) if args.data_root else DEFAULT_DATA_ROOT
        if not root.is_dir():
            print(f"error: research dataset folder {root} is absent; place ../shared/data beside the "
                  "repository or pass --data-root DIR", file=sys.stderr)
            return 2
        try:
            model = train_with_shared(examples + corrected, root, folder)
        except DatasetError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    else:
        model = train(examples + corrected, folder)
    print(json.dumps({"model_version": model.version, "trained": True, "examples": len(examples) + len(corrected),
                      "corrections": len(corrected), "seconds": round(time.perf_counter() - started, 2),
                      "model_dir": str(folder)}))
    return 0


def stored_corrections() -> list[Example]:
    """Analysts' corrections from the database, when there is one (a fresh install has none)."""
    engine = make_engine(Environment.from_environ().database_url)
    try:
        if not is_up_to_date(engine):
            return []
        with Session(engine) as s:
            return correction_examples(s)
    except SQLAlchemyError:
        return []
    finally:
        engine.dispose()


def cmd_classify(args: argparse.Namespace) -> int:
    settings = load_config(args.config).settings
    classifier = Classifier(load_model(settings, train_if_missing=True), settings)
    stream: TextIO = open(args.file, encoding="utf-8") if args.file else sys.stdin  # noqa: SIM115
    try:
        for chunk in chunks(enumerate(stream, 1), 256):
            for line in classify_lines(classifier, chunk, explain=args.explain):
                sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
            sys.stdout.flush()
    finally:
        if args.file:
            stream.close()
    return 0


def cmd_correct(args: argparse.Namespace) -> int:
    """An analyst corrects a post's classification; the next `yuqing train` learns from it."""
    engine = open_database(Environment.from_environ().database_url)
    try:
        with session_scope(engine) as s:
            fixed = record_correction(
                s, post_id=args.post_id, actor=args.by or getpass.getuser(), now=datetime.now(UTC),
                category=args.category, severity=args.severity, sentiment=args.sentiment, note=args.note,
            )
            out = {"post_id": fixed.post_id, "category": fixed.category, "severity": fixed.severity,
                   "sentiment": fixed.sentiment, "by": fixed.actor, "at": fixed.at.isoformat()}
    except CorrectionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(out, ensure_ascii=False))
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tr = sub.add_parser("train", help="train the classifier from the seed corpus, --data files and corrections")
    tr.add_argument("--config")
    tr.add_argument("--data", action="append", metavar="FILE", help="extra labelled JSONL (repeatable)")
    tr.add_argument("--no-seed", action="store_true", help="leave out the shipped seed corpus")
    tr.add_argument("--no-corrections", action="store_true", help="leave out analysts' corrections")
    tr.add_argument("--if-missing", action="store_true", help="do nothing when a model is already active")
    tr.add_argument("--with-shared-data", action="store_true",
                    help="also train on the research datasets (research-only: never commit or ship the model)")
    tr.add_argument("--data-root", metavar="DIR", help="research datasets folder (default: ../shared/data)")
    tr.set_defaults(func=cmd_train)
    cl = sub.add_parser("classify", help="classify JSON lines ({'text', 'title'?}) from FILE or stdin")
    cl.add_argument("file", nargs="?")
    cl.add_argument("--config")
    cl.add_argument("--explain", action="store_true", help="add the rules that fired and the strongest terms per head")
    cl.set_defaults(func=cmd_classify)
    co = sub.add_parser("correct", help="correct a post's classification (used by the next training run)")
    co.add_argument("post_id", type=int)
    co.add_argument("--category", choices=["EMERGENCY", "FALSE_INFO", "GOV_IMAGE", "LIVELIHOOD", "MAJOR_POLICY",
                                           "IRRELEVANT"])
    co.add_argument("--severity", choices=["I", "II", "III", "IV"])
    co.add_argument("--sentiment", choices=["negative", "neutral", "positive"])
    co.add_argument("--note")
    co.add_argument("--by", help="who corrects it (default: the login name)")
    co.set_defaults(func=cmd_correct)
    add_evaluate_command(sub)
