"""The sweep's page: ``<sweep dir>/sweep.html``, one self-contained HTML file (plotly's script inlined once: it
opens from disk with no network) with the study at a glance — trial count, best value and its trial — the
optimisation history, the parameter importances, the parallel coordinates, the slice plots (optuna's plots), and
the table of trials (state, value, parameters, the step a pruned trial stopped at) with a link to each trial's run
dir. The sweeper rewrites it as each trial ends (written whole: a reader never sees half a page); while the sweep
runs the page reloads itself every ``REFRESH_S`` seconds.
"""

from __future__ import annotations

import html
import os
import warnings
from urllib.parse import quote
from typing import Any, Dict, List, Optional

from autotrain_hydra.paths import written_whole

PAGE = "sweep.html"
REFRESH_S = 20


def _figures(study: Any) -> List[tuple]:
    """(title, figure or the reason there is none) for each of optuna's plots."""
    from optuna.importance import MeanDecreaseImpurityImportanceEvaluator
    from optuna.trial import TrialState
    from optuna.visualization import (plot_optimization_history, plot_parallel_coordinate, plot_param_importances,
                                      plot_slice)

    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    searched = {k for t in complete for k in t.params}
    plots = [("Optimisation history", lambda: plot_optimization_history(study), 1),
             # optuna 2.10's default importance evaluator (fANOVA) breaks on current numpy: the random-forest one
             ("Parameter importances", lambda: plot_param_importances(
                 study, evaluator=MeanDecreaseImpurityImportanceEvaluator(seed=0)), 2),
             ("Parallel coordinates", lambda: plot_parallel_coordinate(study), 2),
             ("Slice plots", lambda: plot_slice(study), 1)]
    out = []
    for title, make, needs in plots:
        if len(complete) < needs or not searched:
            out.append((title, f"needs {needs} complete trial{'s' if needs > 1 else ''} with searched parameters "
                               f"(so far: {len(complete)})"))
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # optuna marks some plots experimental
                out.append((title, make()))
        except Exception as e:  # a plot optuna cannot draw for this study: said on the page, the rest drawn
            out.append((title, f"not drawn: {type(e).__name__}: {e}"))
    return out


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.5g}"
    return html.escape(str(value))


def render(study: Any, rows: List[Dict[str, Any]], result: Dict[str, Any], sweep_dir: str, live: bool) -> str:
    """The page's HTML: ``rows`` and ``result`` are the sweep report's (``features.sweep``)."""
    import plotly.io as pio

    metric = result["metric"]
    params = sorted({k for r in rows for k in r if k.startswith("params.")})
    head = "".join(f"<th>{html.escape(h)}</th>" for h in
                   ["trial", "state", metric, *[p[len("params."):] for p in params], "pruned at step", "seconds",
                    "run dir"])
    body = []
    for r in rows:
        path = r.get("path") or ""
        link = os.path.relpath(path, sweep_dir) if os.path.isdir(path) else None
        dir_cell = f'<a href="{html.escape(quote(link))}/">{html.escape(link)}/</a>' if link else _cell(path)
        best = ' class="best"' if r["number"] == result.get("best_trial") else ""
        cells = [r["number"], r["state"], r["value"], *[r.get(p) for p in params], r.get("pruned_at_step"),
                 r.get("seconds")]
        body.append(f"<tr{best}>" + "".join(f"<td>{_cell(c)}</td>" for c in cells) + f"<td>{dir_cell}</td></tr>")
    figures, first = [], True
    for title, fig in _figures(study):
        if isinstance(fig, str):
            figures.append(f"<section><h2>{html.escape(title)}</h2><p class=\"none\">{html.escape(fig)}</p></section>")
            continue
        div = pio.to_html(fig, include_plotlyjs=first, full_html=False, config={"displaylogo": False})
        first = False  # plotly's script once, inlined: the page opens from disk, no network
        figures.append(f"<section><h2>{html.escape(title)}</h2>{div}</section>")
    best = result.get("best_value")
    summary = (f"<span id=\"n-trials\">{result['n_trials']}</span> trials ({result['n_complete']} complete, "
               f"{result.get('n_pruned', 0)} pruned, {result['n_failed']} failed"
               + (f", {running} running" if (running := sum(r["state"] in ("RUNNING", "WAITING") and r["counted"]
                                                                for r in rows)) else "")
               + (f"; {result['n_lost']} lost with their worker" if result.get("n_lost") else "")
               + f"); best {html.escape(metric)} "
               f"({result['direction']}): <span id=\"best-value\">{_cell(best) or 'none yet'}</span>"
               + (f" (trial {result['best_trial']})" if best is not None else ""))
    refresh = f'<meta http-equiv="refresh" content="{REFRESH_S}">' if live else ""
    state = "running: this page reloads itself as trials end" if live else "ended"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">{refresh}
<title>sweep {html.escape(result['study_name'])}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.9em; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }}
tr.best {{ background: #e8f5e9; }}
.none {{ color: #777; }}
section {{ margin-top: 1.5em; }}
</style></head>
<body>
<h1>Sweep {html.escape(result['study_name'])}</h1>
<p id="summary">{summary}</p>
<p>Study: {html.escape(str(result['storage']))} ({state}).</p>
<h2>Trials</h2>
<table id="trials"><thead><tr>{head}</tr></thead><tbody>
{chr(10).join(body)}
</tbody></table>
{chr(10).join(figures)}
</body></html>
"""


def write_page(study: Any, rows: List[Dict[str, Any]], result: Dict[str, Any], sweep_dir: str,
               live: bool) -> Optional[str]:
    """Write ``sweep.html`` into the sweep dir (whole); its path."""
    path = os.path.join(sweep_dir, PAGE)
    with written_whole(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(render(study, rows, result, sweep_dir, live))
    return path

