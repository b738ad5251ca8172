"""Write notebooks/gp-training.ipynb (source of the notebook; outputs come from papermill)."""
import nbformat as nbf

md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell
cells = [
md("""# Training 2-scale CNNs with and without backdrop on the GP task

> The committed copy of this notebook (`notebooks/gp-training.ipynb`) is a `smoke` run, re-executed by CI
> (nbval): its numbers only show that the code runs. The executed copies to read are
> [`results/scaled/notebooks/gp-training.ipynb`](../results/scaled/notebooks/gp-training.ipynb) (the committed
> full run: 10 seeds, full grid, data-size curve, robustness row) and
> [`results/default/notebooks/gp-training.ipynb`](../results/default/notebooks/gp-training.ipynb) (what
> `make reproduce` runs in < 20 minutes on 2 CPU cores).

**The claim.** The paper trains a small CNN on four classes of images, each the sum of a small-blob and a
large-blob Gaussian random field whose correlation lengths set the class, with only 25 training images per
class. It reports that backdrop masks placed at the two scales make the network generalise better.

**Why masks at two scales could help.** A 1024² image holds about 10 000 independent small blobs but only a
few dozen large ones. Every gradient step on a whole image averages over all of them, so the large-scale
features are learnt from very few independent examples. A *coarse* backdrop mask lets each step learn from a
random subset of the large blobs (a different "sample" of the large scale every time), a *fine* mask does the
same for the small scale; the forward pass, and so the loss, still sees the whole image.

**The regime.** On a CPU we run the paper's task shrunk by 4 in every length (profile `scaled`/`default`:
256² images, small lengths 2.375 / 2.5 px, large 20 / 35 px, 25 training images per class). This keeps the
number of blobs per image and the authors' mask grids (32 × 32 fine, 4 × 4 coarse) at 1/16 of the cost.
Every configuration gets the same budget; the configuration called "best" is chosen on a separate validation
set, and the test set (independent seed) is used once, at the end."""),
code("""profile = "smoke"   # smoke | default | scaled | quick | paper (papermill overrides this)""", metadata={"tags": ["parameters"]}),
code("""from IPython.display import Markdown, display

from backdrop_repro import experiments, profiles
from backdrop_repro.plots import save
from backdrop_repro.plots import training as tplots

p = profiles.get(profile)
d, s = p.data, p.sweep
print(f"profile {p.name}: {p.description}")
print(f"data: {d.size}² images, lengths {d.scales}, powers {d.power}, sampler {d.method!r}; "
      f"train {d.per_class}/class, validation {d.val_per_class}/class, test {d.test_per_class}/class (independent seeds)")
print(f"network: width {s.width}, {s.epochs} epochs, batch {s.batch_size}, {s.optimizer} lr {s.lr:g}; seeds {list(s.seeds)}")
print(f"mask levels: fine {s.fine_probs}, coarse {s.coarse_probs}, demo {s.demo_probs}; "
      f"data sizes {s.data_sizes}, robustness sampler {s.robustness_method}")"""),
md("""## The grid

`run_sweep` trains every run that has no record yet (here: none, when the records are committed) and rebuilds
the tables from the records. Each configuration is compared with no backdrop *seed by seed* (the same seed gives
both the same initial weights, data order and data), with a paired t-test, Holm's correction over all the
backdrop configurations, and a 95 % confidence interval of the paired difference."""),
code("""sweep = experiments.run_sweep(profile, progress=False)
print(f"{sweep['n_runs']}/{sweep['n_planned']} runs; chosen on validation: {sweep['best_on_validation']}")
display(Markdown(experiments.results_table(sweep)))"""),
md("""The likelihood classifier below scores each test image by the exact Gaussian likelihood of the class
spectra (exact only when the data are one periodic Gaussian field; here the two scales are standardised
separately, so it is an approximation, not a ceiling). Its accuracy on each scale separately tells which scale
is hard: telling 2.375 from 2.5 px blobs needs many blobs, 20 from 35 px far fewer."""),
code("""ref = sweep["reference"]["main"]
print(f"likelihood classifier ({'exact' if ref['exact'] else 'approximate'}) on the test set: accuracy {ref['test_accuracy']:.3f}; "
      f"small scale alone {ref['small_scale_accuracy']:.3f}, large scale alone {ref['large_scale_accuracy']:.3f}; chance 0.25")"""),
code("""save(tplots.accuracy_vs_prob(sweep), f"gp-training-{profile}-accuracy-vs-prob")"""),
md("""## Learning curves

Same budget for every configuration. The training loss is the running mean over each epoch with the masks on;
the curves show whether every configuration has levelled off by the end of the budget (a masked network sees
fewer gradient paths per step, so it learns more slowly)."""),
code("""save(tplots.learning_curves(sweep), f"gp-training-{profile}-learning-curves")"""),
md("""## Beyond the paper: more data, and the paper's own sampler

The paper's claim is about a few information-rich images. The data-size curve repeats no backdrop and the
configuration chosen on validation with other numbers of training images per class, keeping the number of image
visits (epochs × images) fixed. The robustness row draws the same task with the paper's own construction
(sums of enveloped patches, here through its matched spectrum) instead of periodic FFT fields."""),
code("""if any(r["study"] == "data_size" for r in sweep["summary"]):
    display(Markdown(experiments.results_table(sweep, "data_size")))
    save(tplots.data_size_curve(sweep), f"gp-training-{profile}-data-size")
if any(r["study"] == "robustness" for r in sweep["summary"]):
    display(Markdown(experiments.results_table(sweep, "robustness")))
    rob = sweep["reference"].get("robustness")
    if rob:
        print(f"likelihood classifier on the {rob['method']} data ({'exact' if rob['exact'] else 'approximate'}): {rob['test_accuracy']:.3f}")"""),
md("""## What the trained networks look at

The gradient that reaches the input in one training step of a trained network, without and with its masks
(seed 0). With masks, only the kept cells send a gradient back. Drawing a figure never trains: `ensure_models`
is the one visible step that re-trains the shown networks when their weights are not in the data cache (e.g. on
a fresh clone whose run records came from git)."""),
code("""shown = [spec for spec in experiments.plan_grid(profile, seeds=[p.sweep.seeds[0]])
         if spec.label in ("none", sweep["best_on_validation"]) or spec.config == "demo"]
experiments.ensure_models(shown, progress=False)
models = {spec.label: experiments.load_model(spec) for spec in shown}
_, _, test = experiments.load_data(shown[0])
save(tplots.gradient_maps(models, test.images[0], int(test.labels[0]), title=f"  [{profile}]"),
     f"gp-training-{profile}-gradients")"""),
md("""## Findings

Generated from the results above (nothing here is typed by hand):"""),
code("""v = sweep["verdict"]
lines = [v["overall"], ""] + [f"- {t}" for t in v["sentences"]]
for st in v["studies"]:
    c, b = st["comparison"], st["baseline"]
    what = f"{st['per_class']} training images per class" if st["study"] == "data_size" else f"data drawn by the `{st['method']}` sampler"
    lines.append(f"- With {what}: no backdrop {b['mean']:.3f}; `{c['name']}` changes it by "
                 f"{c['mean']:+.3f} [{c['low']:+.3f}, {c['high']:+.3f}] (paired over {c['n']} seeds, p = {c['p']:.2g}, one pre-planned comparison).")
if not sweep["complete"]:
    lines.append(f"- Only {sweep['n_runs']} of {sweep['n_planned']} planned runs are recorded: the numbers are provisional.")
display(Markdown("\\n".join(lines)))"""),
]
nb = nbf.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                                               "language_info": {"name": "python"}})
nbf.write(nb, "notebooks/gp-training.ipynb")
