"""Does splitting the batch inside a step (lax.scan over chunks of 64) keep convolutions fast?

  python benchmarks/chunked_layers.py

Forward+backward (jax.grad of a sum of squares, input and kernel) of three of the CPU forms
at batch 64 and 256, computed directly and as a lax.scan over chunks of 64 examples with
the kernel gradient accumulated in the carry (mean of 3 calls after a warm-up call).
"""
import time, jax, jax.numpy as jnp, numpy as np
from unigen_jax.models import kernels
def _time(fn,*a,calls=3):
  jax.block_until_ready(fn(*a)); t=time.perf_counter()
  for _ in range(calls): jax.block_until_ready(fn(*a))
  return (time.perf_counter()-t)/calls
cases={"ct 7->14 paper":((7,7,128),(4,4,128,64),lambda x,k: kernels.subpixel_conv_transpose(x,k,((2,2),(2,2)))),
       "up 16->32 pytorchgan":((16,16,128),(3,3,128,64),lambda x,k: kernels.upsample_conv(x,k)),
       "ct pythae 7->14":((7,7,512),(3,3,512,256),lambda x,k: kernels.subpixel_conv_transpose(x,k,((1,2),(1,2))))}
for name,(xs,ks,f) in cases.items():
  k=jax.random.normal(jax.random.key(1),ks)*.05
  for B in (64,256):
    x=jax.random.normal(jax.random.key(0),(B,)+xs)
    loss=lambda x,k: jnp.sum(f(x,k)**2)
    g=jax.jit(jax.grad(loss,argnums=(0,1)))
    def chunked(x,k,c=64):
      xs_=x.reshape((B//c,c)+x.shape[1:])
      def body(acc,xc):
        gx,gk=jax.grad(loss,argnums=(0,1))(xc,k); return acc+gk, gx
      gk,gx=jax.lax.scan(body,jnp.zeros_like(k),xs_)
      return gx.reshape(x.shape),gk
    gc=jax.jit(chunked)
    t1=_time(g,x,k); t2=_time(gc,x,k)
    print(f"{name:22s} B={B:4d} direct {t1*1e3:7.1f}ms  chunked64 {t2*1e3:7.1f}ms", flush=True)
