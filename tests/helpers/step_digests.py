"""Digests of two fixed-seed training steps of every variant (run by a test under two commits).

  PYTHONPATH=<checkout> python tests/helpers/step_digests.py [variant[@size] ...]

Prints JSON {variant: SHA-256 prefix of the parameters, batch statistics and optimizer
states after two steps}. It only uses APIs that exist since the first release of the step
(``train_step.build``, ``Model.init``, ``make_train_step``), so an older checkout can run it.
``variant@pythae_mlp`` builds the benchmark's MLP 784-512-16 at batch 64 instead of the tiny
networks: XLA fuses a large step differently, so a change can be bitwise at one size only.
"""

import hashlib, json, sys
import jax, numpy as np
from unigen_jax import train_step, variants

def digest(tree):
  h = hashlib.sha256()
  for leaf in jax.tree.leaves(tree):
    a = np.asarray(leaf); h.update(f"{a.dtype.str}{a.shape}".encode()); h.update(a.tobytes())
  return h.hexdigest()[:16]

SIZES = {"": (dict(width=4, hidden=(16,)), 8),
         "pythae_mlp": (dict(architecture="mlp", hidden=(512,), latent_dim=16,
                             mlp_activation="relu"), 64)}

def batch(v, n=8):
  rng = np.random.default_rng(0)
  b = {"image": (rng.random((n, 28, 28, 1)) > 0.5).astype(np.float32)}
  keys = variants.get(v).batch_keys
  if "label" in keys: b["label"] = (np.arange(n) % 10).astype(np.int32)
  if "unlabelled_image" in keys: b["unlabelled_image"] = (rng.random((n, 28, 28, 1)) > 0.5).astype(np.float32)
  if "target_image" in keys: b["target_image"] = rng.random((n, 28, 28, 1)).astype(np.float32)
  return b

out = {"jax": jax.__version__}
for spec in (sys.argv[1:] or variants.names()):
  v, _, size = spec.partition("@")
  kwargs, n = SIZES[size]
  m = train_step.build(v, **kwargs)
  s = m.init(jax.random.key(0))
  step = train_step.make_train_step(m, parallelism="none")  # one compilation, two steps
  s, metrics = step(s, batch(v, n), jax.random.key(1))
  s, metrics = step(s, batch(v, n), jax.random.key(1))
  out[spec] = digest((s.params, s.batch_stats, s.opt_states))
print(json.dumps(out, indent=1))
