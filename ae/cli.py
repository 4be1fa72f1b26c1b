"""`python -m ae <command>`: train, evaluate, make-sample (and the codec's commands).

Parsing lives in `main(argv)` so tests call it in-process. Each command only turns its options
into calls of `ae` (training: `ae.train.train_and_save`; test digits: `ae.data`; folder writes:
`ae.files`; figures in cards: `ae.weights.record_metrics`) and prints the result. User errors
(`AEError`) print a one-line message to stderr and exit with status 2: never a traceback.
"""
from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
from pathlib import Path

from ae.errors import AEError
from ae.files import atomic_write_bytes

EXIT_USER_ERROR = 2
DEFAULT_MAX_DIGITS = 100_000  # compress/decompress --max-digits (the codec's own default too)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number above 0, not {text}")
    return value


def non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"must be a number of at least 0, not {text}")
    return value


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="dataset root (default: $AE_DATA_DIR or a user cache folder)")
    p.add_argument("--dataset", default="mnist", choices=["mnist", "fashion"])


def cmd_train(args: argparse.Namespace) -> int:
    from ae.train import Trainer, settings_with_defaults, train_and_save, training_data
    from ae.weights import user_models_dir

    train, val = training_data(args.sample, args.data_dir, args.dataset, args.val_size, args.seed)
    # What is not given comes from the recommended defaults for this dataset and architecture.
    settings = settings_with_defaults(args.model, full_dataset=not args.sample, train_digits=len(train),
                                      epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                                      train_size=args.train_size, latent_dim=args.latent, seed=args.seed,
                                      max_steps=args.max_steps, device=args.device)
    trainer = Trainer(settings, train, val)
    out = Path(args.out) if args.out else user_models_dir() / f"{args.model}-latent{trainer.model.config.latent_dim}.safetensors"
    print(f"Training {args.model} on {trainer.data.source} ({trainer.device}); saving to {out}", file=sys.stderr)
    path = train_and_save(trainer, out, {"validation": val.source} if val is not None else {}, half=args.half,
                          interruptible=True)
    print(f"Saved {path} and {path.with_suffix('.json').name} ({trainer.seconds:.1f} s of training)", file=sys.stderr)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ae.data import load_digits
    from ae.evaluate import evaluate_autoencoder, evaluate_classifier, results_table
    from ae.sample import load_sample
    from ae.weights import load_model, record_metrics

    data = load_sample() if args.sample else load_digits("test", args.data_dir, args.dataset)
    if args.limit:
        data = data.subset(args.limit)
    classifier = load_model(args.classifier) if args.classifier else None
    results = {name: evaluate_autoencoder(load_model(name), data, classifier) for name in args.models}
    if classifier is not None:
        results[args.classifier] = evaluate_classifier(classifier, data)
    if args.update_cards:
        for name, metrics in results.items():
            record_metrics(name, metrics, data.source, "python -m ae " + " ".join(args.raw_argv))
    if args.json:
        print(json.dumps({name: metrics | {"data": data.source} for name, metrics in results.items()}, indent=2))
    else:
        print(f"Evaluated on {data.source}")
        print(results_table(results))
    return 0


def cmd_train_codec(args: argparse.Namespace) -> int:
    """Train one operating point of the codec (a rate-distortion autoencoder) and save it with
    its integer probability tables."""
    import torch

    from ae.integer_decoder import export_tables
    from ae.registry import point_id_problem
    from ae.train import CodecSettings, Trainer, codec_start_model, train_and_save, training_data

    if why := point_id_problem(args.id):  # before the training, not after it
        raise AEError(f"{why.capitalize()}.")
    torch.set_num_threads(args.threads)
    train, val = training_data(args.sample, args.data_dir, val_size=args.val_size, seed=args.seed)
    model = codec_start_model(args.arch, args.latent, args.hidden, args.channels, seed=args.seed, init=args.init)
    steps_per_epoch = math.ceil(min(args.train_size or len(train), len(train)) / args.batch_size)
    settings = CodecSettings(model=model.config.arch, latent_dim=model.latent_dim, epochs=args.epochs, lr=args.lr,
                             batch_size=args.batch_size, train_size=args.train_size, seed=args.seed,
                             max_steps=args.max_steps, device=args.device, rate_target_bits=args.target_bits,
                             beta=args.beta, distortion=args.distortion, init=args.init,
                             rate_ramp_steps=round(args.ramp_epochs * steps_per_epoch))
    trainer = Trainer(settings, train, val, model=model)
    print(f"Training codec point {args.out} on {trainer.data.source}: target {args.target_bits} bits/digit",
          file=sys.stderr)
    card = {"training_command": "python -m ae " + shlex.join(args.raw_argv),
            "codec": {"id": args.id, "label": args.label or Path(args.out).stem}}
    path = train_and_save(trainer, args.out, card, half=args.half, quiet=args.quiet)
    tables = export_tables(path)  # what receivers decode with
    print(f"Saved {path} and {tables.name} ({trainer.seconds:.1f} s of training)", file=sys.stderr)
    return 0


def cmd_compress(args: argparse.Namespace) -> int:
    from ae.codec import compress, find_point, get_coder
    from ae.data import digits_from, parse_test_indices

    if not args.images and not args.test_indices:
        raise AEError("Nothing to compress: give image files and/or --test-indices.")
    if len(args.images) > args.max_digits:
        raise AEError(f"{len(args.images):,} images are more than --max-digits {args.max_digits:,}.")
    indices = (parse_test_indices(args.test_indices, limit=args.max_digits - len(args.images))
               if args.test_indices else [])
    point = find_point(args.point) if args.point else find_point(args.quality, family=args.model)
    try:
        batch = digits_from(args.images, indices, args.data_dir)
    except MemoryError:
        raise AEError("Not enough memory to load these digits: compress fewer at a time.") from None
    payload = compress(batch, get_coder(point), refinement=refinement_of(args))
    out = Path(args.output)
    try:
        atomic_write_bytes(out, payload)
    except OSError as exc:
        raise AEError(f"Cannot write {out}: {exc.strerror or exc}.") from None
    n = len(batch)
    print(f"{n} digit{'s' if n > 1 else ''} -> {out} ({len(payload):,} bytes"
          + (f", {len(payload) / n:.2f} bytes per digit" if n > 1 else "") + f", {point.name})")
    return 0


def refinement_of(args: argparse.Namespace):
    """The sender's latent refinement from --refine-steps / --refine-lambda (None: off)."""
    if not args.refine_steps and args.refine_lambda is None:
        return None
    from ae.latent_refinement import Refinement

    return Refinement(args.refine_steps, args.refine_lambda, args.refine_relaxation)  # RefinementError: a one-line message


def add_refinement_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--refine-steps", type=int, default=0,
                   help="optimise each digit's symbols for this many steps at encode time (default 0: off; "
                        "slower to encode, any receiver decodes the result)")
    p.add_argument("--refine-lambda", type=float,
                   help="with --refine-steps: the bits one dB of PSNR is worth (see docs/measurements.md)")
    p.add_argument("--refine-relaxation", default="ste", help="how rounding is relaxed: ste (default), ste-anneal, sga")


def cmd_decompress(args: argparse.Namespace) -> int:
    # The receiver: numpy, constriction and Pillow, never PyTorch (tests/test_receiver.py).
    from ae.codec import open_payload
    from ae.files import write_png_folder
    from ae.images import from_uint8
    from ae.png import png_encode

    src = Path(args.payload)
    try:
        payload = src.read_bytes()
    except OSError as exc:
        raise AEError(f"Cannot read {src}: {exc.strerror or exc}.") from None
    except MemoryError:
        raise AEError(f"Not enough memory to read {src}.") from None
    reader = open_payload(payload, max_digits=args.max_digits)  # every check before any output
    out = Path(args.output)
    try:
        if out.suffix.lower() == ".png":
            if reader.count != 1:
                raise AEError(f"The payload holds {reader.count:,} digits: give a folder for -o, not one PNG file.")
            atomic_write_bytes(out, png_encode(from_uint8(next(reader.chunks()).pixels[0])))
        else:
            if out.exists() and not out.is_dir():
                raise AEError(f"{out} exists and is not a folder.")
            # Chunk by chunk: memory stays one chunk's worth, and an error leaves no partial output.
            write_png_folder(out, (from_uint8(pixels) for part in reader.chunks() for pixels in part.pixels), reader.count)
    except OSError as exc:
        raise AEError(f"Cannot write {out}: {exc.strerror or exc}.") from None
    except MemoryError:
        raise AEError(f"Not enough memory to write {reader.count:,} digits.") from None
    n = reader.count
    print(f"{src} ({len(payload):,} bytes, {reader.point}) -> {n} digit{'s' if n > 1 else ''} in {out}")
    return 0


def cmd_benchmark(args: argparse.Namespace) -> int:
    import torch

    from ae.benchmark import (benchmark_json, format_table, load_results, markdown_table, point_card_figures,
                              run_benchmark, write_html)

    if args.show:  # print a saved run as a Markdown table (the README's), running nothing
        try:
            table = markdown_table(load_results(Path(args.show)))
        except (OSError, ValueError, KeyError) as exc:
            raise AEError(f"Cannot read the benchmark file {args.show}: {exc}") from None
        print(table)
        return 0
    from ae.codec import get_coder
    from ae.data import load_digits
    from ae.registry import operating_points
    from ae.sample import load_sample
    from ae.weights import load_model, record_metrics, weights_path

    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_sample() if args.sample else load_digits("test", args.data_dir)
    if args.limit:
        data = data.subset(args.limit, seed=0)
    classifier = load_model(args.classifier) if args.classifier else None
    names = args.latent_models
    if names is None:  # the shipped plain autoencoders, when they exist
        names = [n for n in ("ff", "cnn") if weights_path(n).exists()]
        for missing in sorted({"ff", "cnn"} - set(names)):
            print(f"warning: no weights/{missing}.safetensors: its latents are left out", file=sys.stderr)
    latent_models = {name: load_model(name) for name in names}
    points = [p for p in operating_points() if not args.points or p.name in args.points]
    coders = [get_coder(p) for p in points]
    command = "python -m ae " + shlex.join(args.raw_argv)
    print(f"Benchmarking on {data.source}", file=sys.stderr)
    results = run_benchmark(data, classifier, latent_models, coders, classic=not args.no_classic,
                            progress=lambda s: print(f"  {s}", file=sys.stderr))
    doc = benchmark_json(results, data, command)
    print(format_table(results))
    try:
        if args.json:
            atomic_write_bytes(Path(args.json), (json.dumps(doc, indent=1) + "\n").encode())
        if args.html:
            write_html(doc, Path(args.html))
    except OSError as exc:
        raise AEError(f"Cannot write the benchmark output: {exc.strerror or exc}.") from None
    if args.update_cards:
        for p in points:
            metrics, label = point_card_figures(results, p.name)
            record_metrics(p.name, metrics, data.source, command, label=label)
    return 0


def cmd_export_integer(args: argparse.Namespace) -> int:
    """Write each codec point's integer decoder tables (NAME.int.safetensors) and note them in its card."""
    from ae.integer_decoder import IntegerDecoderError, export_tables

    for name in args.points:
        try:
            out = export_tables(name)
        except IntegerDecoderError as exc:
            raise AEError(f"Cannot export the integer decoder of {name}: {exc}") from None
        print(f"{out} ({out.stat().st_size:,} bytes)")
    return 0


def cmd_refine_point(args: argparse.Namespace) -> int:
    """A refined point: a base point's weights plus residual tables fitted on the train split."""
    from ae.refined_coder import make_refined_point

    n = make_refined_point(args.base, args.out, args.id, args.step, args.deadzone, args.label or args.out,
                           args.data_dir, args.limit, "python -m ae " + shlex.join(args.raw_argv))
    print(f"weights/{args.out}.safetensors: {args.base} + residual (step {args.step}, dead zone "
          f"{args.deadzone}/16), tables from {n:,} training digits; measure it with `python -m ae benchmark "
          f"--points {args.out} --update-cards`")
    return 0


def cmd_half(args: argparse.Namespace) -> int:
    """Store weights as float16 in place; their cards drop the measured figures (remeasure them)."""
    from ae.integer_decoder import export_tables
    from ae.weights import load_card, store_half, weights_path

    for name in args.weights:
        path = weights_path(name)
        size = store_half(path, "python -m ae " + shlex.join(args.raw_argv))
        if size is None:
            print(f"{path} is already float16")
        else:
            print(f"{path}: {size:,} -> {path.stat().st_size:,} bytes; remeasure it (evaluate/benchmark --update-cards)")
            if "codec" in load_card(path):
                print(f"{export_tables(path)}: its integer decoder, from the float16 weights")
    return 0


def cmd_make_sample(args: argparse.Namespace) -> int:
    from ae.sample import build_sample

    path = build_sample(args.data_dir)
    print(f"Wrote {path} ({path.stat().st_size:,} bytes)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ae", description="Autoencoders that compress handwritten digits.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train an autoencoder or the classifier")
    p.add_argument("--model", choices=["ff", "cnn", "classifier"], default="ff")
    p.add_argument("--latent", type=positive_int, help="latent neurons (default: 196 for ff, 32 for cnn)")
    p.add_argument("--epochs", type=positive_int,
                   help="default: enough for 500 steps for ff/cnn (ae.train.default_settings), 10 for the classifier")
    p.add_argument("--lr", type=positive_float, help="default: 3e-3 for cnn, 1e-3 for ff and the classifier")
    p.add_argument("--batch-size", type=positive_int, help="default: 32 for ff/cnn, 128 for the classifier")
    p.add_argument("--train-size", type=positive_int,
                   help="train on a random subset of this many digits (default: 8,000 for ff/cnn on MNIST, else all)")
    p.add_argument("--val-size", type=positive_int, default=2000, help="test digits used for the validation loss")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-steps", type=positive_int, help="stop after this many steps (a dry run)")
    p.add_argument("--device", default="auto", help="auto (GPU when present), cpu or cuda")
    p.add_argument("--sample", action="store_true", help="train on the bundled sample (no dataset needed)")
    p.add_argument("--out", help="weights file to write (default: the user models folder)")
    p.add_argument("--half", action="store_true", help="store the weights as float16 (half the file size)")
    _add_data_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="measure the autoencoders on the MNIST test set")
    p.add_argument("--models", nargs="+", default=["ff", "cnn"], help="weights names or paths")
    p.add_argument("--classifier", default="classifier", help="classifier weights ('' to skip)")
    p.add_argument("--sample", action="store_true", help="use the bundled 1,000-digit sample")
    p.add_argument("--limit", type=positive_int, help="evaluate on a random subset of this many digits")
    p.add_argument("--json", action="store_true", help="print one JSON object keyed by model")
    p.add_argument("--update-cards", action="store_true", help="write the metrics into the weights cards")
    _add_data_args(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("train-codec", help="train one operating point of the codec (rate-distortion autoencoder)")
    p.add_argument("--out", required=True, help="weights file to write, e.g. weights/rd-q1.safetensors")
    p.add_argument("--id", type=int, required=True, help="operating-point id written in payload headers (0-7)")
    p.add_argument("--label", help="short human label for the app")
    p.add_argument("--target-bits", type=float, required=True, help="rate target in bits per digit")
    p.add_argument("--arch", choices=["rdae", "rdcnn", "rdhybrid"], default="rdae",
                   help="rdae: feedforward transforms; rdcnn: convolutional; rdhybrid: convolutional "
                        "encoder, feedforward decoder (ignored with --init)")
    p.add_argument("--latent", type=positive_int, default=64)
    p.add_argument("--hidden", type=int, default=1024)
    p.add_argument("--channels", type=positive_int, nargs=3, default=[16, 32, 64], metavar="C",
                   help="rdcnn/rdhybrid: channels of the three conv stages (wider trains ~2x slower on a CPU)")
    p.add_argument("--init", help="start from these weights (a name or path) instead of from scratch")
    p.add_argument("--beta", type=float, default=1e-4, help="initial rate weight (then tuned to the target)")
    p.add_argument("--distortion", choices=["mse", "log-mse"], default="mse",
                   help="mse, or log-mse (mean over digits of ln MSE: what the mean PSNR measures)")
    p.add_argument("--ramp-epochs", type=non_negative_float, default=0.0,
                   help="glide the rate target from the starting model's rate to --target-bits over "
                        "this many epochs (for fine-tuning far from the start's rate)")
    p.add_argument("--epochs", type=positive_int, default=20)
    p.add_argument("--lr", type=positive_float, default=1e-3)
    p.add_argument("--batch-size", type=positive_int, default=128)
    p.add_argument("--train-size", type=positive_int)
    p.add_argument("--val-size", type=positive_int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-steps", type=positive_int)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (a GPU when present)")
    p.add_argument("--half", action="store_true", help="store the weights as float16 (half the file size)")
    p.add_argument("--sample", action="store_true", help="train on the bundled sample (tests)")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--data-dir", help="dataset root (default: $AE_DATA_DIR or a user cache folder)")
    p.set_defaults(func=cmd_train_codec)

    p = sub.add_parser("compress", help="compress digit images into a payload (.aez)")
    p.add_argument("images", nargs="*", help="image files (any format; preprocessed like an upload)")
    p.add_argument("--test-indices", help="MNIST test digits to add, e.g. 0,5,10-19")
    p.add_argument("-o", "--output", required=True, help="payload file to write, e.g. OUT.aez")
    p.add_argument("--model", default="rd", help="codec family (default rd)")
    p.add_argument("--quality", type=int, default=2, help="operating point: 1 (smallest) to 4 (best; see weights/rd-q*.json)")
    p.add_argument("--point", help="operating point by name, e.g. rd-q1 (overrides --model/--quality)")
    p.add_argument("--data-dir", help="MNIST root for --test-indices (default: $AE_DATA_DIR, else the bundled sample)")
    p.add_argument("--max-digits", type=positive_int, default=DEFAULT_MAX_DIGITS,
                   help=f"refuse to compress more digits than this (default {DEFAULT_MAX_DIGITS:,})")
    add_refinement_args(p)
    p.set_defaults(func=cmd_compress)

    p = sub.add_parser("decompress", help="decode a payload into PNG digits")
    p.add_argument("payload", help="a payload file written by `compress`")
    p.add_argument("-o", "--output", required=True, help="a .png file (one digit) or a folder")
    p.add_argument("--max-digits", type=positive_int, default=DEFAULT_MAX_DIGITS,
                   help=f"refuse payloads that hold more digits than this (default {DEFAULT_MAX_DIGITS:,})")
    p.set_defaults(func=cmd_decompress)

    p = sub.add_parser("benchmark", help="measure every method (codec, latents, PNG/JPEG/WebP/JXL/AVIF) on the same digits")
    p.add_argument("--sample", action="store_true", help="use the bundled 1,000-digit sample")
    p.add_argument("--limit", type=positive_int, help="use a random subset of this many digits")
    p.add_argument("--json", help="write the results here (the app reads weights/benchmark.json)")
    p.add_argument("--html", help="write a plotly rate-distortion chart here")
    p.add_argument("--classifier", default="classifier", help="classifier weights ('' to skip accuracy)")
    p.add_argument("--latent-models", nargs="*", help="plain autoencoders to include (default: the shipped ff and cnn)")
    p.add_argument("--points", nargs="*", help="codec operating points to include (default: all shipped)")
    p.add_argument("--no-classic", action="store_true", help="skip the Pillow codecs")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--update-cards", action="store_true", help="write the codec's measured figures into its cards")
    p.add_argument("--show", metavar="JSON", help="print a saved benchmark JSON as a Markdown table and exit")
    p.add_argument("--data-dir", help="dataset root (default: $AE_DATA_DIR or a user cache folder)")
    p.set_defaults(func=cmd_benchmark)

    p = sub.add_parser("export-integer", help="write codec points' integer decoder tables (what receivers decode with)")
    p.add_argument("points", nargs="+", help="codec weights names or paths, e.g. rd-q1")
    p.set_defaults(func=cmd_export_integer)

    p = sub.add_parser("refine-point", help="make a codec point that adds a coded per-pixel residual to another's")
    p.add_argument("base", help="the point to refine, e.g. rd-q2")
    p.add_argument("--out", required=True, help="the new point's name, e.g. rd-q5 (weights/NAME.*)")
    p.add_argument("--id", type=int, required=True, help="the new point's id in payload headers (0-7, unused)")
    p.add_argument("--step", type=int, default=40, help="residual quantiser step in pixel levels (1-255)")
    p.add_argument("--deadzone", type=int, default=11, help="differences under this many 16ths of a step are sent as 0 (8-16)")
    p.add_argument("--label", help="short text for the app (benchmark --update-cards rewrites it)")
    p.add_argument("--limit", type=positive_int, help="fit on the first N training digits (default: all 60,000)")
    p.add_argument("--data-dir", help="dataset root (default: $AE_DATA_DIR or a user cache folder)")
    p.set_defaults(func=cmd_refine_point)

    p = sub.add_parser("half", help="store weights files as float16 (half the size); their cards lose the old figures")
    p.add_argument("weights", nargs="+", help="weights names or paths, e.g. rd-q1")
    p.set_defaults(func=cmd_half)

    p = sub.add_parser("make-sample", help="rebuild the bundled sample from the MNIST test set")
    p.add_argument("--data-dir", help="dataset root (default: $AE_DATA_DIR or a user cache folder)")
    p.set_defaults(func=cmd_make_sample)
    return parser


def _without_data_dir(argv: list[str]) -> list[str]:
    """The arguments less `--data-dir`: that folder is this machine's, and cards name the data by
    its checksum instead."""
    kept, args = [], iter(argv)
    for arg in args:
        if arg == "--data-dir":
            next(args, None)  # and its value
        elif not arg.startswith("--data-dir="):
            kept.append(arg)
    return kept


def main(argv: list[str] | None = None) -> int:
    raw = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(raw)
    args.raw_argv = _without_data_dir(raw)  # as cards record the command
    try:
        return args.func(args)
    except AEError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
