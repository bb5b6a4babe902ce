"""How `zoo tune` found a version's settings (metadata.json metrics.search): a summary and the trials it ran."""

from __future__ import annotations

from collections import Counter
from typing import Any

from zoo.core.contract import ModelCard
from zoo.server.browser.html import Html, h, table

METRICS_KEY = "search"  # where zoo tune records its search in the run's metrics (metadata.json metrics.search)
TRIAL_ROWS = 30  # the best trials by validation accuracy; a long search's full list stays in metadata.json
SETTINGS = (  # (config key, column heading): the settings the search varies
    ("hidden", "hidden widths"),
    ("activation", "activation"),
    ("lr", "learning rate"),
    ("batch_size", "batch"),
    ("dropout", "dropout"),
    ("weight_decay", "weight decay"),
)


def _search_of(card: ModelCard) -> dict | None:
    """The recorded search, or None when the version was trained by `zoo train` (or the record is unusable)."""
    metrics = card.extra.get("metrics")
    search = metrics.get(METRICS_KEY) if isinstance(metrics, dict) else None
    if not isinstance(search, dict) or not isinstance(search.get("trials"), list):
        return None
    return search


def section(card: ModelCard) -> Html | None:
    """The Search section of a tuned version's page; None for a version `zoo train` trained."""
    search = _search_of(card)
    if search is None:
        return None
    trials = [t for t in search["trials"] if isinstance(t, dict)]
    states = Counter(str(t.get("state")) for t in trials)
    cut = sum(1 for t in trials if t.get("cut"))
    kinds = ", ".join(f"{n} {state}" for state, n in sorted(states.items())) + (f"; {cut} cut by the budget" if cut else "")
    chosen = search.get("best_trial")
    how = f"{search.get('library', 'optuna')}, {search.get('sampler', '?')} sampler, {search.get('pruner', '?')} pruner"
    summary = [
        ("How", f"{how}, seed {search.get('seed', '?')}"),
        ("Scored on", "accuracy on the validation split; the test split was used only to score the chosen trial"),
        ("Search time", _seconds(search.get("seconds"))),
        ("Trials", f"{len(trials)} ({kinds})" if trials else "none recorded"),
        ("Chosen", f"trial {chosen}, validation accuracy {_score(search.get('best_val_accuracy'))}" if chosen is not None else "—"),
    ]
    if search.get("study"):
        by_this_run = f"{search.get('trials_this_process', '?')} trials by this run"
        summary.append(("Study", f"{search['study']} ({_storage_kind(search.get('storage'))}), {by_this_run}"))
    facts = h("dl", [(h("dt", k), h("dd", v)) for k, v in summary], class_="facts")
    ranked = sorted(trials, key=lambda t: (_number(t.get("val_accuracy")) is None, -(_number(t.get("val_accuracy")) or 0.0)))
    rows = [_row(t, t.get("number") == chosen) for t in ranked[:TRIAL_ROWS]]
    head = ("trial", "state", *(title for _, title in SETTINGS), "epochs", "seconds", "validation accuracy")
    caption = "Trials, best first" + (f" (the best {TRIAL_ROWS} of {len(trials)})" if len(trials) > TRIAL_ROWS else "")
    return h(
        "section",
        h("h2", "Search", id="search"),
        h("p", "zoo tune chose this version's settings; these are the trials it ran and what each scored."),
        facts,
        table(caption, head, rows, numeric=3),
        aria_labelledby="search",
    )


def _row(t: dict, chosen: bool) -> Html:
    raw = t.get("config")
    config: dict = raw if isinstance(raw, dict) else {}
    state = str(t.get("state", "?")) + (", cut" if t.get("cut") else "") + (" (chosen)" if chosen else "")
    cells = [h("td", str(t.get("number", "?"))), h("td", state)]
    cells += [h("td", _setting(config.get(key))) for key, _ in SETTINGS]
    cells += [h("td", _setting(t.get("epochs_run")), class_="num"), h("td", _seconds(t.get("seconds")), class_="num")]
    cells.append(h("td", _score(t.get("val_accuracy")), class_="num"))
    return h("tr", cells, class_="chosen" if chosen else None)


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _score(v: Any) -> str:
    n = _number(v)
    return f"{n:.4f}" if n is not None else "—"


def _seconds(v: Any) -> str:
    n = _number(v)
    return f"{n:.1f} s" if n is not None else "—"


def _setting(v: Any) -> str:
    if isinstance(v, list):
        return "-".join(str(x) for x in v)
    if isinstance(v, float):
        return f"{v:.3g}"
    return "—" if v is None else str(v)


def _storage_kind(url: Any) -> str:
    """The storage's kind ('sqlite', 'postgresql'), never its address or credentials."""
    return str(url).split(":", 1)[0].split("+", 1)[0] if url else "in memory"
