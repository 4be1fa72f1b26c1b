"""`python -m ae <command>`: train, evaluate, make-sample (and the codec's commands).

Parsing lives in `main(argv)` so tests call it in-process. User errors (`AEError`) print a
one-line message to stderr and exit with status 2: never a traceback.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ae.errors import AEError

EXIT_USER_ERROR = 2


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="dataset root (default: $AE_DATA_DIR or a user cache folder)")
    p.add_argument("--dataset", default="mnist", choices=["mnist", "fashion"])


def cmd_train(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ae.data import load_digits
    from ae.sample import load_sample
    from ae.train import Trainer, TrainSettings
    from ae.weights import save_model, user_models_dir

    if args.sample:
        train, val = load_sample(), None
    else:
        train = load_digits("train", args.data_dir, args.dataset)
        val = load_digits("test", args.data_dir, args.dataset).subset(args.val_size, seed=args.seed)
    settings = TrainSettings(model=args.model, latent_dim=args.latent, epochs=args.epochs, lr=args.lr,
                             batch_size=args.batch_size, train_size=args.train_size, seed=args.seed,
                             max_steps=args.max_steps, device=args.device)
    trainer = Trainer(settings, train, val)
    out = Path(args.out) if args.out else user_models_dir() / f"{args.model}-latent{trainer.model.config.latent_dim}.safetensors"
    print(f"Training {args.model} on {trainer.data.source} ({trainer.device}); saving to {out}", file=sys.stderr)
    with tqdm(total=trainer.total_steps, unit="step", file=sys.stderr) as bar:
        try:
            for event in trainer.run():
                bar.update(event.step - bar.n)
                post = {"epoch": event.epoch, "loss": f"{event.loss:.5f}", "ex/s": f"{event.examples_per_s:,.0f}"}
                if event.val_loss is not None:
                    post["val"] = f"{event.val_loss:.5f}"
                bar.set_postfix(post)
                if event.kind == "epoch":
                    bar.write(f"epoch {event.epoch}: train {event.loss:.5f}"
                              + (f", validation {event.val_loss:.5f}" if event.val_loss is not None else "")
                              + f", {event.examples_per_s:,.0f} digits/s")
        except KeyboardInterrupt:
            bar.write("Interrupted: saving what was trained so far.")
            trainer.stopped_early = True
    card = trainer.card()
    if val is not None:
        card["validation"] = val.source
    path = save_model(trainer.model, out, card)
    print(f"Saved {path} and {path.with_suffix('.json').name} ({trainer.seconds:.1f} s of training)", file=sys.stderr)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ae.data import load_digits
    from ae.evaluate import evaluate_autoencoder, evaluate_classifier
    from ae.sample import load_sample
    from ae.weights import load_card, load_model, weights_path, write_card

    data = load_sample() if args.sample else load_digits("test", args.data_dir, args.dataset)
    if args.limit:
        data = data.subset(args.limit)
    classifier = load_model(args.classifier) if args.classifier else None
    results = {}
    for name in args.models:
        results[name] = evaluate_autoencoder(load_model(name), data, classifier)
        results[name]["data"] = data.source
    if classifier is not None:
        results[args.classifier] = evaluate_classifier(classifier, data) | {"data": data.source}
    if args.update_cards:
        for name, metrics in results.items():
            card = load_card(name)
            card["metrics"] = {k: v for k, v in metrics.items() if k != "data"}
            card["metrics_data"] = data.source
            card["metrics_command"] = "python -m ae evaluate " + " ".join(args.raw_argv)
            write_card(weights_path(name), card)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"Evaluated on {data.source}")
        print(f"{'model':<12}{'latent':>7}{'PSNR dB':>9}{'SSIM':>7}{'MSE':>9}{'accuracy':>10}{'params':>10}{'digits/s':>10}")
        for name, m in results.items():
            acc = f"{100 * m['accuracy']:.2f}%" if "accuracy" in m else "-"
            if "psnr" in m:
                print(f"{name:<12}{m['latent_dim']:>7}{m['psnr']:>9.2f}{m['ssim']:>7.3f}{m['mse']:>9.5f}"
                      f"{acc:>10}{m['parameters']:>10,}{m['digits_per_s']:>10,.0f}")
            else:
                print(f"{name:<12}{'-':>7}{'-':>9}{'-':>7}{'-':>9}{acc:>10}{m['parameters']:>10,}{'-':>10}")
    return 0


def cmd_train_codec(args: argparse.Namespace) -> int:
    """Train one operating point of the codec (a rate-distortion autoencoder) and save it with
    its integer probability tables."""
    import torch
    from tqdm import tqdm

    from ae.data import load_digits
    from ae.models import ModelConfig, build_model
    from ae.sample import load_sample
    from ae.train import Trainer, TrainSettings
    from ae.weights import load_model, save_model

    torch.set_num_threads(args.threads)
    if args.sample:
        train, val = load_sample(), None
    else:
        train = load_digits("train", args.data_dir)
        val = load_digits("test", args.data_dir).subset(args.val_size, seed=args.seed)
    if args.init:
        model = load_model(args.init).train()
    else:
        torch.manual_seed(args.seed)
        model = build_model(ModelConfig(arch="rdae", latent_dim=args.latent, hidden=args.hidden))
    model.rate_target_bits = args.target_bits
    model.beta = args.beta
    settings = TrainSettings(model="rdae", latent_dim=model.latent_dim, epochs=args.epochs, lr=args.lr,
                             batch_size=args.batch_size, train_size=args.train_size, seed=args.seed,
                             max_steps=args.max_steps, device="cpu")
    trainer = Trainer(settings, train, val, model=model)
    print(f"Training codec point {args.out} on {trainer.data.source}: target {args.target_bits} bits/digit",
          file=sys.stderr)
    with tqdm(total=trainer.total_steps, unit="step", file=sys.stderr, disable=args.quiet) as bar:
        for event in trainer.run():
            bar.update(event.step - bar.n)
            bar.set_postfix({"bits": f"{model.last_bits:.1f}", "mse": f"{model.last_mse:.5f}",
                             "beta": f"{model.beta:.2e}"})
            if event.kind == "epoch":
                bar.write(f"epoch {event.epoch}: loss {event.loss:.5f} bits {model.last_bits:.1f} "
                          f"mse {model.last_mse:.5f} beta {model.beta:.3e}"
                          + (f" val {event.val_loss:.5f}" if event.val_loss is not None else ""))
    model.update()
    card = trainer.card()
    card["training"] |= {"init": args.init, "rate_target_bits": args.target_bits, "final_beta": model.beta,
                         "threads": args.threads}
    card["training_command"] = "python -m ae " + " ".join(args.raw_argv)
    card["codec"] = {"id": args.id, "label": args.label or Path(args.out).stem}
    path = save_model(model, args.out, card)
    print(f"Saved {path} ({trainer.seconds:.1f} s of training)", file=sys.stderr)
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
    p.add_argument("--latent", type=int, help="latent neurons (default: 196 for ff, 32 for cnn)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--train-size", type=int, help="train on a random subset of this many digits")
    p.add_argument("--val-size", type=int, default=2000, help="test digits used for the validation loss")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-steps", type=int, help="stop after this many steps (a dry run)")
    p.add_argument("--device", default="auto", help="auto (GPU when present), cpu or cuda")
    p.add_argument("--sample", action="store_true", help="train on the bundled sample (no dataset needed)")
    p.add_argument("--out", help="weights file to write (default: the user models folder)")
    _add_data_args(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="measure the autoencoders on the MNIST test set")
    p.add_argument("--models", nargs="+", default=["ff", "cnn"], help="weights names or paths")
    p.add_argument("--classifier", default="classifier", help="classifier weights ('' to skip)")
    p.add_argument("--sample", action="store_true", help="use the bundled 1,000-digit sample")
    p.add_argument("--limit", type=int, help="evaluate on a random subset of this many digits")
    p.add_argument("--json", action="store_true", help="print one JSON object keyed by model")
    p.add_argument("--update-cards", action="store_true", help="write the metrics into the weights cards")
    _add_data_args(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("train-codec", help="train one operating point of the codec (rate-distortion autoencoder)")
    p.add_argument("--out", required=True, help="weights file to write, e.g. weights/rd-q1.safetensors")
    p.add_argument("--id", type=int, required=True, help="operating-point id written in payload headers (1-15)")
    p.add_argument("--label", help="short human label for the app")
    p.add_argument("--target-bits", type=float, required=True, help="rate target in bits per digit")
    p.add_argument("--latent", type=int, default=64)
    p.add_argument("--hidden", type=int, default=1024)
    p.add_argument("--init", help="start from these weights (a name or path) instead of from scratch")
    p.add_argument("--beta", type=float, default=1e-4, help="initial rate weight (then tuned to the target)")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--train-size", type=int)
    p.add_argument("--val-size", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-steps", type=int)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--sample", action="store_true", help="train on the bundled sample (tests)")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--data-dir", help="dataset root (default: $AE_DATA_DIR or a user cache folder)")
    p.set_defaults(func=cmd_train_codec)

    p = sub.add_parser("make-sample", help="rebuild the bundled sample from the MNIST test set")
    p.add_argument("--data-dir", help="dataset root (default: $AE_DATA_DIR or a user cache folder)")
    p.set_defaults(func=cmd_make_sample)
    return parser


def main(argv: list[str] | None = None) -> int:
    raw = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(raw)
    args.raw_argv = raw
    try:
        return args.func(args)
    except AEError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
