"""Digests of two fixed-seed training steps of every variant (run by a test under two commits).

  PYTHONPATH=<checkout> python tests/helpers/step_digests.py [variant ...]

Prints JSON {variant: SHA-256 prefix of the parameters, batch statistics and optimizer
states after two steps}. It only uses APIs that exist since the first release of the step
(``train_step.build``, ``Model.init``, ``make_train_step``), so an older checkout can run it.
"""

import hashlib, json, sys
import jax, numpy as np
from unigen_jax import train_step, variants

def digest(tree):
  h = hashlib.sha256()
  for leaf in jax.tree.leaves(tree):
    a = np.asarray(leaf); h.update(f"{a.dtype.str}{a.shape}".encode()); h.update(a.tobytes())
  return h.hexdigest()[:16]

def batch(v):
  rng = np.random.default_rng(0)
  b = {"image": (rng.random((8, 28, 28, 1)) > 0.5).astype(np.float32)}
  keys = variants.get(v).batch_keys
  if "label" in keys: b["label"] = (np.arange(8) % 10).astype(np.int32)
  if "unlabelled_image" in keys: b["unlabelled_image"] = (rng.random((8, 28, 28, 1)) > 0.5).astype(np.float32)
  if "target_image" in keys: b["target_image"] = rng.random((8, 28, 28, 1)).astype(np.float32)
  return b

out = {"jax": jax.__version__}
for v in (sys.argv[1:] or variants.names()):
  m = train_step.build(v, width=4, hidden=(16,))
  s = m.init(jax.random.key(0))
  step = train_step.make_train_step(m, parallelism="none")  # one compilation, two steps
  s, metrics = step(s, batch(v), jax.random.key(1))
  s, metrics = step(s, batch(v), jax.random.key(1))
  out[v] = digest((s.params, s.batch_stats, s.opt_states))
print(json.dumps(out, indent=1))
