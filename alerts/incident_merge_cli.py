"""`yuqing merge TARGET OTHER…` and `yuqing split ID POST…`: the duty officer folds incidents about one event
into one, or moves posts about another event out into a new incident (alerts/merge.py does the work).

Both print the result in Chinese and exit 0, or 1 when refused. New or re-planned clocks are in the database;
the running service schedules them when it next reconciles (at start-up).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from alerts.actions import ActionResult
from alerts.features import extractor_for
from alerts.heat import HeatParams
from alerts.merge import Remeasure, merge, split
from config.env import Environment
from config.loader import load_config
from models.db import session_scope
from models.migrate import open_database


def _remeasure(config: str | None) -> Remeasure:
    settings = load_config(config).settings
    return Remeasure(HeatParams.from_settings(settings.incidents.heat),
                     extractor_for(tuple(settings.profile.jurisdiction)))


def _report(ok: bool, message: str, scheduled: int) -> int:
    if ok:
        print(message + (f"；新排定时限 {scheduled} 个" if scheduled else ""))
        return 0
    print(f"未执行：{message}", file=sys.stderr)
    return 1


def _run(args: argparse.Namespace, change: Callable[..., ActionResult], *ids: Any) -> int:
    """Run one merge or split in its own transaction (rolled back when refused) and report it."""
    remeasure = _remeasure(args.config)
    db = open_database(Environment.from_environ().database_url)
    try:
        with session_scope(db) as s:
            result = change(s, *ids, actor=args.by or getpass.getuser(), now=datetime.now(UTC), remeasure=remeasure)
            if not result.ok:
                s.rollback()
    finally:
        db.dispose()
    return _report(result.ok, result.message, len(result.scheduled))


def cmd_merge(args: argparse.Namespace) -> int:
    return _run(args, merge, args.target, args.others)


def cmd_split(args: argparse.Namespace) -> int:
    return _run(args, split, args.incident, args.posts)


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    m = sub.add_parser("merge", help="merge incidents about one event into TARGET (the others end as merged)")
    m.add_argument("target", type=int, metavar="TARGET", help="the incident that stays")
    m.add_argument("others", type=int, nargs="+", metavar="OTHER", help="incidents folded into it")
    m.add_argument("--by", help="who merges (default: the login name)")
    m.add_argument("--config", help="config file (default: $YUQING_CONFIG or the bundled default.yaml)")
    m.set_defaults(func=cmd_merge)
    sp = sub.add_parser("split", help="move posts of an incident out into a new incident with its own clocks")
    sp.add_argument("incident", type=int, metavar="ID", help="the incident the posts leave")
    sp.add_argument("posts", type=int, nargs="+", metavar="POST_ID", help="posts that form the new incident")
    sp.add_argument("--by", help="who splits (default: the login name)")
    sp.add_argument("--config", help="config file (default: $YUQING_CONFIG or the bundled default.yaml)")
    sp.set_defaults(func=cmd_split)
