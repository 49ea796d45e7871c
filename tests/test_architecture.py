"""The house's structure: layers without circles, variants that decide their own behaviour,
and a new variant that is one declaration (README, section Architecture)."""

import ast
import dataclasses
import importlib.util
import pathlib
import subprocess
import sys

import jax.numpy as jnp
import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = REPO / "unigen_jax"

# Lower layers never import higher ones (README, section Architecture).
LAYERS = [
    {"distributions", "model_config"},
    {"losses"},
    {"models", "metrics", "parallel"},
    {"variants"},
    {"train_step"},
    {"data_sources", "input_pipeline", "checkpointing", "workdir", "reporting", "report",
     "eval_classifier", "config", "configs", "resume"},
    {"evaluator"},
    {"evaluate", "validation"},
    {"train"},
    {"main"},
]


def _room(module: str) -> str:
  """'unigen_jax.losses._adversarial' -> 'losses'."""
  parts = module.split(".")
  return parts[1] if len(parts) > 1 else ""


def _layer(room: str) -> int:
  for index, rooms in enumerate(LAYERS):
    if room in rooms:
      return index
  raise AssertionError(f"module room {room!r} is in no layer of LAYERS; add it")


def import_graph() -> dict:
  """{module: {imported unigen_jax modules}} from the source (static, both import forms)."""
  graph = {}
  for path in PACKAGE.rglob("*.py"):
    module = ".".join(path.relative_to(REPO).with_suffix("").parts).replace(".__init__", "")
    deps = set()
    for node in ast.walk(ast.parse(path.read_text())):
      if isinstance(node, ast.Import):
        deps |= {a.name for a in node.names if a.name.startswith("unigen_jax.")}
      elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("unigen_jax"):
        for alias in node.names:
          full = f"{node.module}.{alias.name}"
          deps.add(full if importlib.util.find_spec(node.module) and _is_module(full)
                   else node.module)
    graph[module] = {d for d in deps if d != module}
  return graph


def _is_module(name: str) -> bool:
  try:
    return importlib.util.find_spec(name) is not None
  except (ImportError, ValueError):
    return False


def test_no_import_circle_between_rooms():
  graph = import_graph()
  rooms = {}
  for module, deps in graph.items():
    rooms.setdefault(_room(module), set()).update(
        _room(d) for d in deps if _room(d) and _room(d) != _room(module))
  seen, stack = set(), set()

  def visit(room, path):
    if room in stack:
      raise AssertionError(f"import circle: {' -> '.join(path + [room])}")
    if room in seen:
      return
    stack.add(room)
    for dep in sorted(rooms.get(room, ())):
      visit(dep, path + [room])
    stack.discard(room)
    seen.add(room)

  for room in sorted(rooms):
    visit(room, [])


def test_no_import_from_a_lower_layer_to_a_higher_one():
  bad = []
  for module, deps in import_graph().items():
    for dep in deps:
      if _room(module) and _room(dep) and _layer(_room(dep)) > _layer(_room(module)):
        bad.append(f"{module} imports {dep}")
  assert not bad, bad


# Modules over ~350 lines, each with the one job that justifies its length.
LONG_MODULES = {
    "unigen_jax/models/backbones.py": "the network backbones (every layer stack of the paper's "
                                      "and the peers' architectures), nothing else",
    "unigen_jax/train.py": "the training program: train_and_evaluate and its loop",
    "unigen_jax/losses/_adversarial.py": "the sleep-phase (GAN-family) losses, one per function; "
                                         "most lines are docstrings with math and doctests",
    "unigen_jax/losses/_variational.py": "the wake-phase (VAE-family) losses, likewise",
}


def test_no_long_module_without_a_single_stated_job():
  lengths = {str(p.relative_to(REPO)): len(p.read_text().splitlines())
             for p in PACKAGE.rglob("*.py")}
  long = {p: n for p, n in lengths.items() if n > 350}
  unexplained = {p: n for p, n in long.items() if p not in LONG_MODULES}
  assert not unexplained, (f"modules over 350 lines: {unexplained}; split them by job or "
                           "state their one job in LONG_MODULES")


def test_no_code_outside_variants_switches_on_variant_names():
  """What train/evaluate need to know about a variant is a field of its declaration: no string
  literal naming a variant appears in code outside ``variants/`` (docstrings aside)."""
  from unigen_jax import metrics, variants
  # 'iwae' is also the name of a metric (the IWAE estimate), which evaluation code may name.
  names = set(variants.names()) - set(metrics.METRICS)
  offenders = []
  for path in PACKAGE.rglob("*.py"):
    if "variants" in path.parts:
      continue
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    for node in ast.walk(tree):
      if (isinstance(node, ast.Constant) and isinstance(node.value, str)
          and node.value in names and id(node) not in docstrings):
        offenders.append((str(path.relative_to(REPO)), node.value))
  # The one allowed: the variant of `get_config()` without an argument (DEFAULT_VARIANT).
  assert offenders == [("unigen_jax/config.py", "vae")], offenders


def test_losses_import_nothing_heavy_and_report_the_time():
  """`import unigen_jax.losses` pulls in JAX only: no TFDS, orbax, matplotlib, tensorboardX,
  flax, optax or ml_collections."""
  code = ("import sys, time; t = time.perf_counter(); import unigen_jax.losses; "
          "dt = time.perf_counter() - t; heavy = [m for m in ('tensorflow_datasets', "
          "'tensorflow', 'orbax', 'matplotlib', 'tensorboardX', 'flax', 'optax', "
          "'ml_collections', 'grain') if m in sys.modules]; print(heavy, round(dt, 2))")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                       timeout=300)
  assert out.returncode == 0, out.stderr
  heavy, seconds = out.stdout.rsplit(" ", 1)
  assert heavy == "[]", heavy
  print(f"import unigen_jax.losses: {seconds} s (JAX itself included)")


def test_a_new_variant_is_one_declaration(tmp_path):
  """Registered from outside the package: it trains with the program, evaluates its bound and
  its samples get grids, with no edit of any other module (the README's example, extended)."""
  from tests.test_input_pipeline import make_idx_folder
  from tests.test_train_program import tiny_config
  from unigen_jax import distributions, train, variants
  vae = variants.get("vae")

  def beta_vae_loss(ctx, batch):  # a beta-VAE: the KL term weighted by 2
    x = batch["image"]
    mean, log_var = ctx.apply("encoder", x)
    z = mean + jnp.exp(0.5 * log_var) * ctx.normal(mean.shape)
    ll = distributions.bernoulli_log_prob(x, ctx.apply("decoder", z))
    kl = distributions.kl_diag_gaussian_standard_normal(mean, log_var)
    return jnp.mean(-ll + 2.0 * kl), {"elbo": jnp.mean(ll - kl)}

  name = "beta_vae_test_declaration"
  variants.register(dataclasses.replace(
      vae, name=name, description="beta-VAE (beta=2)",
      players=(variants.Player("vae", ("encoder", "decoder"), beta_vae_loss),)), overwrite=True)
  (tmp_path / "idx").mkdir()
  make_idx_folder(tmp_path / "idx", n_train=120)
  config = tiny_config(name, str(tmp_path / "idx"), steps=4,
                       **{"eval.metrics": "elbo", "eval.data_dir": str(tmp_path / "idx")})
  summary = train.train_and_evaluate(config, str(tmp_path / "run"))
  assert np.isfinite(summary["eval"]["test_elbo"])
  assert (tmp_path / "run" / "samples" / "step_0000004.png").exists()
