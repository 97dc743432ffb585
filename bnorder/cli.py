# PYTHON_ARGCOMPLETE_OK  (argcomplete's marker: this entry point answers completion requests)
"""``bnorder`` command line: ``orderings``, ``describe``, ``train``, ``sweep``, ``data``,
``report``, ``dashboard`` and ``completion``.

Every error is one line on stderr. A usage error (a bad flag or value, a bad sweep file, an
--out that holds another sweep) names the field (as its flag), the bad value and the valid
choices, writes nothing and exits 2; a runtime failure (a dataset missing from the data root, a
failed download or write) exits 1; Ctrl-C exits 130. Each error class carries its code
(``BnorderError.exit_code``).

Parsing, ``--help``, ``--version`` and completion import nothing heavy (no torch, pandas, Ray):
each command imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from bnorder import completion
from bnorder.errors import BnorderError, ConfigError

__all__ = ["main"]

EXIT_USAGE = 2  # argparse's, and ConfigError's: see bnorder.errors
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a command stopped by Ctrl-C


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line (no usage block), exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(
            EXIT_USAGE,
            f"{self.prog}: error: {message}{self._suggest(message)} (see {self.prog} --help)\n",
        )

    def _suggest(self, message: str) -> str:
        """argparse (before 3.12) does not say which choice or flag was meant."""
        from bnorder.errors import closest

        if (m := re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)) is not None:
            guess = closest(m.group(1), re.findall(r"'([^']*)'", m.group(2)))
        elif (m := re.search(r"unrecognized arguments: (\S+)", message)) is not None:
            guess = closest(m.group(1), [o for a in self._actions for o in a.option_strings])
        else:
            guess = None
        return f"; did you mean {guess!r}?" if guess else ""


# Config fields settable from the command line, with their help. Values reach TrialConfig as
# given, so validation (and its messages) live in one place.
_MODEL_FLAGS: dict[str, str] = {
    "dataset": "cifar10 | cifar100 | fashion_mnist | mnist | synthetic | cifar_shaped",
    "arch": "cnn | mlp | mlp_seed | resnet (default cnn)",
    "ordering": "block ordering, e.g. conv-relu-bn, bn-relu-conv, case2 (`bnorder orderings`)",
    "depth": "ordered blocks (default 8)",
    "width": "channels or units per block (default 64)",
    "lrelu_slope": "LeakyReLU negative slope (default 0.01)",
    "gn_groups": "GroupNorm groups (default 8)",
    "init": "default | kaiming",
}
_TRAIN_FLAGS: dict[str, str] = {
    "optimizer": "adam | adamw | sgd (default adam)",
    "lr": "learning rate (default 1e-3)",
    "momentum": "SGD momentum (default 0.9)",
    "weight_decay": "weight decay (default 0)",
    "batch_size": "batch size (default 128)",
    "epochs": "epochs (default 10)",
    "schedule": "constant | cosine",
    "seed": "replicate seed; init and data-order seeds follow it (default 0)",
    "init_seed": "weight-init seed (default: --seed)",
    "data_seed": "data-order seed (default: --seed)",
    "split_seed": "train/val split seed (default 0)",
    "subset": "use the first N training examples",
    "test_subset": "use the first N test examples",
    "val_fraction": "fraction of training data held out for validation (default 0.1)",
    "normalization": "dataset (train mean/std) | half (the seed's (x-0.5)/0.5)",
    "device": "auto | cpu | cuda | cuda:N | mps (default auto)",
    "precision": "fp32 | bf16",
    "probe_size": "examples in the probe batch (default 256)",
}
_BOOL_FLAGS = {
    "augment": "random crop + horizontal flip",
    "probes": "record per-block probe statistics",
    "channels_last": "NHWC memory format (faster convolutions on tensor-core GPUs)",
    "compile": "torch.compile the network",
}


def _flag(field: str) -> str:
    return "--" + field.replace("_", "-")


def _add_fields(parser: argparse.ArgumentParser, fields: dict[str, str]) -> None:
    for name, help_text in fields.items():
        parser.add_argument(
            _flag(name), dest=name, default=argparse.SUPPRESS, metavar="X", help=help_text
        )


def _config(args: argparse.Namespace, fields: Sequence[str]) -> Any:
    from bnorder.config import TrialConfig

    given = {k: v for k, v in vars(args).items() if k in fields}
    try:
        return TrialConfig(**given)
    except ConfigError as exc:
        raise exc.at(_flag(exc.field)) if exc.field in TrialConfig.model_fields else exc from None


# ---------------------------------------------------------------- commands
def _cmd_orderings(args: argparse.Namespace) -> int:
    from bnorder.layers import ACTIVATIONS, NORMS
    from bnorder.ordering import ALIASES, EXAMPLES, WEIGHT_OPS

    def names(registry: dict[str, Any]) -> list[tuple[str, str, list[str]]]:
        out: dict[str, tuple[str, str, list[str]]] = {}
        for key, spec in registry.items():
            out.setdefault(spec.name, (spec.name, spec.description, []))[2].append(key)
        return [(n, d, [a for a in al if a != n]) for n, d, al in out.values()]

    print("A block ordering is ops joined by '-': exactly one weight op, at most one norm and one")
    print("activation, in any order. Ops before the weight op act on the block's input.\n")
    print(
        f"weight op:   conv  (a convolution in cnn/resnet, a linear layer in mlp; synonyms: "
        f"{', '.join(k for k in WEIGHT_OPS if k != 'conv')})"
    )
    for title, registry in (("norms", NORMS), ("activations", ACTIVATIONS)):
        print(f"\n{title}:")
        for name, desc, aliases in names(registry):
            extra = f"  (also: {', '.join(aliases)})" if aliases else ""
            print(f"  {name:<7} {desc}{extra}")
    print("\naliases:")
    for alias, target in ALIASES.items():
        print(f"  {alias:<7} = {target}")
    print("\nexamples:")
    for text, desc in EXAMPLES.items():
        print(f"  {text:<14} {desc}")
    return 0


def _cmd_describe(args: argparse.Namespace) -> int:
    from bnorder.models import count_parameters
    from bnorder.train import build_model

    cfg = _config(args, _MODEL_FLAGS)
    model = build_model(cfg)
    print(model)
    print(
        f"ordering: {cfg.ordering}  arch: {cfg.arch}  depth: {cfg.depth}  width: {cfg.width}"
        f"  dataset: {cfg.dataset}"
    )
    print(f"parameters: {count_parameters(model)}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from bnorder.data import load_dataset
    from bnorder.device import resolve_device
    from bnorder.results import check_writable, write_result
    from bnorder.train import EpochReport, train_trial

    cfg = _config(args, {**_MODEL_FLAGS, **_TRAIN_FLAGS, **_BOOL_FLAGS})
    try:
        resolve_device(cfg.device)
    except ConfigError as exc:
        raise exc.at("--device") from None
    out = check_writable(args.out, field="--out")
    load_dataset(cfg.dataset, args.data_root)  # a missing dataset fails here, before any output
    tag = f"{cfg.dataset} {cfg.arch} {cfg.ordering} d{cfg.depth} w{cfg.width} seed {cfg.seed}"
    print(f"training {tag}: lr {cfg.lr:g}, batch {cfg.batch_size}, {cfg.epochs} epochs", flush=True)

    started = time.monotonic()

    def progress(ep: EpochReport) -> None:
        from bnorder.progress import epoch_eta

        m = ep.metrics
        eta = epoch_eta(time.monotonic() - started, m["epoch"], cfg.epochs)
        print(
            f"epoch {m['epoch']:>3}/{cfg.epochs}  train loss {m['train_loss']:.4f}"
            f" acc {m['train_acc']:.4f}"
            f"  val acc {m['val_acc']:.4f}  test acc {m['test_acc']:.4f}"
            f"  {m['train_seconds']:.1f}s  {m['images_per_s']:,.0f} img/s"
            + (f"  {eta}" if eta else ""),
            flush=True,
        )

    result = train_trial(cfg, progress, data_root=args.data_root)
    path = write_result(out, result)
    s = result.summary()
    print(
        f"trial {result.trial_id}: {result.status}  params {result.n_params:,}  final test acc "
        f"{s['final_test_acc']:.4f}  best val acc {s['best_val_acc']:.4f}"
        f" (epoch {s['best_val_epoch']})  test acc at best val {s['test_acc_at_best_val']:.4f}"
        f"  {result.wall_seconds:.1f}s on {result.device_name}"
    )
    print(f"results: {path.parent.parent} (trials.parquet, epochs.parquet)")
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from bnorder.sweep.plan import make_plan
    from bnorder.sweep.spec import load_sweep

    spec, text = load_sweep(args.file)
    if args.tracker or args.tracker_uri:
        from bnorder.sweep.trackers import with_tracker_flags

        trackers = with_tracker_flags(spec.trackers, args.tracker, args.tracker_uri)
        spec = spec.model_copy(update={"trackers": trackers})
    plan = make_plan(spec, str(args.file))
    out = args.out or spec.output_dir
    if storage := args.storage or spec.storage:
        from bnorder.tune.runner import check_storage

        check_storage(storage)  # before the plan is printed, --dry-run included
    print_plan(plan, out, args.storage)
    if args.dry_run:
        return 0

    from bnorder.tune.runner import run_sweep, summarise

    started = time.monotonic()
    outcomes = run_sweep(
        plan,
        text,
        out=out,
        address=args.address,
        resume=args.resume,
        data_root=args.data_root,
        storage=args.storage,
        src=str(args.file),
    )
    if any(o.unfinished for o in outcomes):  # Ctrl-C: Ray stopped the phase and saved it
        raise KeyboardInterrupt
    print(f"sweep {spec.name}: done in {time.monotonic() - started:.0f}s")
    for o in outcomes:
        print(f"  phase {o.phase}: {o.trials} trials, {o.errors} failed, {o.seconds:.0f}s")
    print("\n".join(summarise(out)))
    print(f"results: {out} (trials.parquet, epochs.parquet, sweep.yaml)")
    return 0


def _cmd_data_fetch(args: argparse.Namespace) -> int:
    from bnorder.data.fetch import fetch

    started = time.monotonic()
    raw = fetch(args.dataset, args.data_root)
    print(
        f"{args.dataset}: {len(raw.x_train):,} train / {len(raw.x_test):,} test images "
        f"{tuple(raw.x_train.shape[1:])}, verified, in {raw.source} "
        f"({time.monotonic() - started:.1f}s)"
    )
    return 0


def _cmd_data_list(args: argparse.Namespace) -> int:
    from bnorder.data import default_data_root
    from bnorder.data.fetch import survey

    root = Path(args.data_root).expanduser() if args.data_root else default_data_root()
    print(f"data root: {root}")
    for p in survey(root):
        if p.present:
            print(f"  {p.dataset:<14} present  {p.train:>6,} / {p.test:>6,}  {p.where}")
        else:
            reason = (p.problem or "").split(";")[0]
            print(f"  {p.dataset:<14} missing  {reason}; `bnorder data fetch {p.dataset}`")
    return 0


def print_plan(plan: Any, out: Path, storage: str | None = None) -> None:
    """What a sweep will run: arms, trials per phase, resources (the --dry-run output)."""
    spec = plan.spec
    res = spec.resources
    print(f"sweep {spec.name} ({spec.mode}): {len(plan.arms)} arms")
    for arm in plan.arms:
        print(f"  {arm.arm_id}")
    for phase in plan.phases:
        low, high = plan.trial_range(phase)
        n = f"{low}" if low == high else f"{low} to {high}"
        adaptive = plan.adaptive(phase)
        seeds = f"{adaptive.min} to {adaptive.max} seeds" if adaptive else f"seeds {spec.seed_list}"
        if phase == "grid":
            axes = "".join(f" × {k} {v}" for k, v in spec.grid.items())
            how = f"datasets × archs × orderings{axes} × {seeds}"
        elif phase == "tune":
            space = ", ".join(
                f"{k} {d.model_dump(exclude_none=True)}" for k, d in plan.tune.space.items()
            )
            prune = f", pruning {plan.tune.pruning.model_dump()}" if plan.tune.pruning else ""
            how = f"{plan.tune.trials_per_arm} per arm, maximising {plan.tune.metric}"
            how += f" over {space}{prune}"
        else:
            how = f"each arm's best config × {seeds}"
        print(f"phase {phase}: {n} trials ({how})")
        if adaptive:
            from bnorder.sweep.replication import adaptive_rule

            rule = adaptive_rule(plan, phase)
            print(f"  adaptive seeds against {rule.baseline}: {rule.rule.describe()}")
    epochs = sorted(
        {cfg.epochs for _, cfg in plan.grid_trials} or {a.base.epochs for a in plan.arms}
    )
    print(f"epochs per trial: {', '.join(map(str, epochs))}")
    print(
        f"resources per trial: {res.cpu:g} cpu, {res.gpu:g} gpu; max concurrent: "
        f"{spec.max_concurrent or 'as resources allow'}; retries: {spec.max_failures}"
    )
    if spec.fuse > 1:
        from bnorder.sweep.plan import fused_groups

        trials = [(a.arm_id, c) for a, c in plan.grid_trials]
        where = f"{len(fused_groups(trials, spec.fuse))} Ray trials" if trials else "evaluate"
        print(f"fused seed arrays: up to {spec.fuse} replicates per Ray trial ({where})")
    print(f"output: {out}   ray storage: {storage or spec.storage or out / 'ray'}")
    if spec.trackers.names:
        print(f"trackers: {spec.trackers.describe(Path(out))}")


def _cmd_dashboard(args: argparse.Namespace) -> int:
    from bnorder.tune.dashboard import serve

    serve(args.results, host=args.host, port=args.port)
    return 0


def _cmd_completion(args: argparse.Namespace) -> int:
    print(completion.shellcode(args.shell))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from bnorder.report.render import build_report

    out = args.out or Path(args.results[0]) / "report"
    files = build_report(
        args.results,
        out,
        baseline=args.baseline,
        alpha=args.alpha,
        metric=args.metric,
        margin=args.margin,
        target_diff=args.target_diff,
    )
    print("\n".join(f"- {line}" for line in files.findings))
    print(f"report: {files.markdown}, {files.html} ({len(files.figures)} figures)")
    return 0


# ---------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    from bnorder import __version__ as version

    parser = _Parser(
        prog="bnorder", description="Where should BatchNorm go? Train and compare block orderings."
    )
    parser.add_argument("--version", action="version", version=f"bnorder {version}")
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )

    p = sub.add_parser("orderings", help="list ops, aliases and example orderings")
    p.set_defaults(func=_cmd_orderings)

    p = sub.add_parser(
        "describe", help="print a network and its parameter count (no data, no training)"
    )
    _add_fields(p, _MODEL_FLAGS)
    p.set_defaults(func=_cmd_describe)

    p = sub.add_parser("train", help="train one trial and append its results as Parquet")
    _add_fields(p, {**_MODEL_FLAGS, **_TRAIN_FLAGS})
    for name, help_text in _BOOL_FLAGS.items():
        p.add_argument(
            _flag(name), dest=name, action="store_true", default=argparse.SUPPRESS, help=help_text
        )
    p.add_argument(
        "--data-root",
        type=Path,
        default=None,
        help="where datasets live (default: $BNORDER_DATA_ROOT, else ~/.cache/bnorder/data)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("results/train"),
        help="results directory (default results/train)",
    )
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser(
        "sweep", help="run a sweep file on Ray Tune (local, or a cluster with --address)"
    )
    p.add_argument("file", type=Path, help="a sweep YAML, e.g. sweeps/quickstart.yaml")
    p.add_argument(
        "--out", type=Path, default=None, help="results directory (default: the file's output)"
    )
    p.add_argument(
        "--address", default=None, help="a running Ray cluster, e.g. ray://head:10001 or auto"
    )
    p.add_argument("--resume", action="store_true", help="continue an interrupted sweep in --out")
    p.add_argument(
        "--dry-run", action="store_true", help="print the plan and exit without starting Ray"
    )
    p.add_argument("--data-root", default=None, help="where datasets live (default as for train)")
    p.add_argument(
        "--storage",
        default=None,
        help="Ray checkpoints and experiment state: a path, NFS mount, s3:// or gs:// "
        "(shared by all nodes on a cluster; default: the file's storage, else OUT/ray)",
    )
    p.add_argument(
        "--tracker",
        action="append",
        choices=("mlflow", "wandb", "tensorboard", "none"),
        default=None,
        help="also log every trial to this experiment tracker (repeat for more; added to the "
        "file's trackers, with their options from it; 'none' drops the file's)",
    )
    p.add_argument(
        "--tracker-uri",
        default=None,
        metavar="URI",
        help="MLflow tracking URI, e.g. http://HOST:5000 (default: the file's, else "
        "$MLFLOW_TRACKING_URI, else sqlite OUT/mlflow.db)",
    )
    p.set_defaults(func=_cmd_sweep)
    data = sub.add_parser("data", help="fetch datasets into the data root, list what is there")
    data_sub = data.add_subparsers(
        dest="data_command", required=True, metavar="ACTION", parser_class=_Parser
    )
    data_root_help = "the data root (default: $BNORDER_DATA_ROOT, else ~/.cache/bnorder/data)"
    p = data_sub.add_parser("fetch", help="download (or copy) a dataset and verify it")
    p.add_argument(
        "dataset", help="cifar10 | cifar100 | fashion_mnist | mnist (synthetic ones need none)"
    )
    p.add_argument("--data-root", default=None, help=data_root_help)
    p.set_defaults(func=_cmd_data_fetch)
    p = data_sub.add_parser("list", help="every dataset bnorder knows: present where, or missing")
    p.add_argument("--data-root", default=None, help=data_root_help)
    p.set_defaults(func=_cmd_data_list)

    p = sub.add_parser("report", help="tables, statistics, plots and findings from results")
    p.add_argument(
        "results", nargs="+", help="results directories (or globs), e.g. results/quickstart"
    )
    p.add_argument("--out", type=Path, default=None, help="report folder (default RESULTS/report)")
    p.add_argument(
        "--baseline",
        default="conv-bn-relu",
        help="ordering compared against (default conv-bn-relu)",
    )
    p.add_argument(
        "--alpha",
        type=float,
        default=0.05,
        help="family-wise significance level (Holm); intervals follow it (default 0.05)",
    )
    p.add_argument(
        "--metric",
        default=None,
        help="score column (default test_acc_at_best_val, else final_test_acc)",
    )
    p.add_argument(
        "--margin",
        type=float,
        default=0.01,
        help="equivalence margin in the metric's units: differences inside ±margin do not "
        "matter (default 0.01, one accuracy point)",
    )
    p.add_argument(
        "--target-diff",
        type=float,
        default=None,
        help="the difference 'runs needed' plans to detect (default: the observed one)",
    )
    p.set_defaults(func=_cmd_report)
    p = sub.add_parser(
        "dashboard", help="open optuna-dashboard on a tuned sweep's studies (bnorder[dashboard])"
    )
    p.add_argument("results", type=Path, help="a tuned sweep's results folder (its --out)")
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    p.set_defaults(func=_cmd_dashboard)
    p = sub.add_parser(
        "completion", help='tab completion for a shell: eval "$(bnorder completion bash)"'
    )
    p.add_argument("shell", choices=completion.SHELLS, help="the shell to complete in")
    p.set_defaults(func=_cmd_completion)
    completion.attach(parser)
    parser.subparsers = sub.choices  # type: ignore[attr-defined]
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    completion.autocomplete(parser)  # a shell's <TAB>: answers and exits, before any command
    args, extra = parser.parse_known_args(argv)
    if extra:  # reported by the subcommand's parser, which knows its own flags
        parser.subparsers[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.func(args)
    except BnorderError as exc:
        command = " ".join(filter(None, (args.command, getattr(args, "data_command", None))))
        print(f"bnorder {command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        hint = "; `--resume` continues it" if args.command == "sweep" else ""
        print(f"bnorder {args.command}: interrupted{hint}", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
