"""Adam with PyTorch's coupled L2 weight decay (`torch.optim.Adam(weight_decay=...)`).

PyTorch adds `weight_decay * param` to the gradient before the moment updates; Keras's
`weight_decay` argument is decoupled (AdamW) and Keras's Adam also places epsilon differently
(it adds it to sqrt(v) before the bias correction). The official StarGAN v2 recipe depends on the
PyTorch form, so this optimizer implements it exactly:

    g <- g + weight_decay * p
    m <- beta_1 * m + (1 - beta_1) * g
    v <- beta_2 * v + (1 - beta_2) * g^2
    p <- p - lr / (1 - beta_1^t) * m / (sqrt(v) / sqrt(1 - beta_2^t) + epsilon)
"""

import keras
import tensorflow as tf
from keras import ops


class AdamL2(keras.optimizers.Optimizer):
    """Adam with coupled L2 weight decay, as PyTorch's Adam.

    Args:
      learning_rate: step size (official: 1e-4; the mapping network 1e-6).
      beta_1, beta_2: moment decay rates (official: 0 and 0.99).
      epsilon: added to the bias-corrected sqrt(v) (PyTorch's default 1e-8).
      weight_decay: coefficient of the L2 term added to the gradient (official: 1e-4).
      skip_non_finite: leave a variable and its moments unchanged when its (replica-summed)
        gradient holds a NaN or Inf (`--nan_policy=skip`); the iteration count still advances.
    """

    def __init__(
        self,
        learning_rate=1e-4,
        beta_1=0.0,
        beta_2=0.99,
        epsilon=1e-8,
        weight_decay=1e-4,
        skip_non_finite=False,
        name="adam_l2",
        **kwargs,
    ):
        # The base class's weight_decay is decoupled: keep it off and apply ours in update_step.
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.l2 = weight_decay
        self.skip_non_finite = skip_non_finite

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._m = [self.add_variable_from_reference(v, "m") for v in var_list]
        self._v = [self.add_variable_from_reference(v, "v") for v in var_list]

    def slots(self, variable):
        """The first and second moments {"m": ..., "v": ...} kept for `variable`."""
        index = self._get_variable_index(variable)
        return {"m": self._m[index], "v": self._v[index]}

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        t = ops.cast(self.iterations + 1, dtype)
        g = ops.cast(gradient, dtype)
        if self.l2:
            g = g + ops.cast(self.l2, dtype) * variable
        slots = self.slots(variable)
        m, v = slots["m"], slots["v"]
        correction1 = 1.0 - ops.power(ops.cast(self.beta_1, dtype), t)
        correction2 = 1.0 - ops.power(ops.cast(self.beta_2, dtype), t)
        if self.skip_non_finite:
            self._update_unless_non_finite(g, variable, m, v, lr, correction1, correction2)
            return
        # One fused kernel for m, v and the weight (TensorFlow's Adam op: one pass over each
        # tensor instead of ~15 element-wise ops). It computes
        #   p -= lr * sqrt(c2) / c1 * m / (sqrt(v) + eps'),
        # which is PyTorch's p -= lr / c1 * m / (sqrt(v) / sqrt(c2) + eps) for eps' = eps sqrt(c2).
        # (Its moment updates m += (g - m)(1 - beta_1) round differently from PyTorch's
        # beta_1 m + (1 - beta_1) g: by one float32 ulp of m.)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=m.handle,
            v=v.handle,
            beta1_power=ops.cast(1.0 - correction1, dtype),
            beta2_power=ops.cast(1.0 - correction2, dtype),
            lr=lr,
            beta1=ops.cast(self.beta_1, dtype),
            beta2=ops.cast(self.beta_2, dtype),
            epsilon=ops.cast(self.epsilon, dtype) * ops.sqrt(correction2),
            grad=g,
            use_locking=False,
        )

    def _update_unless_non_finite(self, g, variable, m, v, lr, correction1, correction2):
        """The update in element-wise ops, leaving variable, m and v as they are when g holds a
        NaN or an Inf."""
        new_m = self.beta_1 * m + (1.0 - self.beta_1) * g
        new_v = self.beta_2 * v + (1.0 - self.beta_2) * ops.square(g)
        denom = ops.sqrt(new_v) / ops.sqrt(correction2) + self.epsilon
        new_variable = variable - lr / correction1 * new_m / denom
        # Decided on the gradient every replica shares, so mirrored copies stay identical.
        finite = ops.all(ops.isfinite(g))
        self.assign(m, ops.where(finite, new_m, m))
        self.assign(v, ops.where(finite, new_v, v))
        self.assign(variable, ops.where(finite, new_variable, variable))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "beta_1": self.beta_1,
                "beta_2": self.beta_2,
                "epsilon": self.epsilon,
                "weight_decay": self.l2,
                "skip_non_finite": self.skip_non_finite,
            }
        )
        return config
