"""The K-selection rules and the sub-class measures of latentboost_lab.subclasses on a real
latent: a SmallCNN trained with cross-entropy on a super-class task, then each rule's K per
class and the measures with K = 1 and K = the number of sub-classes. Run by hand for the
module docstring's figures (about 1-2 minutes on one CPU thread):

    OMP_NUM_THREADS=1 LATENTBOOST_DATA=/work/shared/data python tests/_subclass_probe.py
    python tests/_subclass_probe.py --group digits_parity --n-train 0   # no data needed

Prints one JSON line per result. One seed, a short training: these figures say how the rules
and measures behave, not what any method achieves (that is the runner's 5-seed experiment).
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from latentboost_lab.data import GROUPINGS, load_dataset
from latentboost_lab.metrics import embed
from latentboost_lab.models import build_model
from latentboost_lab.subclasses import select_k_per_class, subclass_measures
from latentboost_lab.training import fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--group", default="fmnist_super", choices=sorted(GROUPINGS))
    parser.add_argument("--n-train", type=int, default=6000, help="0: the whole training split")
    parser.add_argument("--n-test", type=int, default=3000, help="0: the whole test split")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--k-max", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)

    grouping = GROUPINGS[args.group]
    data = load_dataset(
        grouping.dataset, group=args.group, n_train=args.n_train or None,
        n_test=args.n_test or None, seed=args.seed, device="cpu", download=False,
    )  # fmt: skip
    torch.manual_seed(args.seed)
    model = build_model("small_cnn", data.info)
    start = time.perf_counter()
    history = fit(model, data, epochs=args.epochs, progress=False, eval_test=False, seed=args.seed)
    print(json.dumps({"trained": repr(data), "epochs": args.epochs,
                      "val_acc": round(history.epochs[-1]["val_acc"], 4),
                      "seconds": round(time.perf_counter() - start, 1)}))  # fmt: skip

    train, train_labels = embed(model, data, "train")
    test, test_labels = embed(model, data, "test")
    for rule in ("silhouette", "bic"):
        start = time.perf_counter()
        chosen = select_k_per_class(train, train_labels, args.k_max, rule=rule, seed=args.seed)
        print(json.dumps({"rule": rule, "k_per_class": [c.k for c in chosen],
                          "scores": [{k: round(v, 3) for k, v in c.scores.items()} for c in chosen],
                          "seconds": round(time.perf_counter() - start, 1)}))  # fmt: skip

    true_k = [len(members) for _, members in grouping.groups]
    measured = (train, train_labels, data.sub_labels("train"), test, test_labels)
    for num_clusters in (1, true_k):
        measures = subclass_measures(
            *measured, data.sub_labels("test"), num_clusters, seed=args.seed
        )
        print(json.dumps({"k_per_class": num_clusters,
                          **{k: round(v, 3) for k, v in measures.items()}}))  # fmt: skip


if __name__ == "__main__":
    main()
