"""Configuration: one frozen dataclass per concern, built from flags at the program's edge."""

import dataclasses
from typing import Optional, Tuple

DECODERS = ("adain", "modconv")  # the generator's decoders (networks/generator.py)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """What defines the four networks (and the domain names a trained model maps ids to).

    Defaults are the official StarGAN v2 ones (CelebA-HQ recipe).

    Attributes:
      img_size: image height and width in pixels, a power of two >= 32.
      style_dim: length of the style code s.
      latent_dim: length of the latent code z.
      num_domains: number of domains.
      max_conv_dim: cap on the channels of any block.
      w_hpf: weight of the generator's high-pass path; 0 disables it (AFHQ), 1 for faces.
      dim_in: channels of the first convolution of G, E and D; None = the official
        2**14 // img_size. Smaller values make tests and CPU demos affordable.
      domain_names: one name per domain id, in id order; empty = domain0, domain1, ...
      decoder: the generator's decoder: "adain" (the paper's) or "modconv" (StyleGAN2 modulated
        convolutions with an RGB skip stream, for 512 px).
    """

    img_size: int = 256
    style_dim: int = 64
    latent_dim: int = 16
    num_domains: int = 2
    max_conv_dim: int = 512
    w_hpf: float = 1.0
    dim_in: Optional[int] = None
    domain_names: Tuple[str, ...] = ()
    decoder: str = "adain"

    def __post_init__(self):
        names = tuple(self.domain_names) or tuple(f"domain{i}" for i in range(self.num_domains))
        object.__setattr__(self, "domain_names", names)
        object.__setattr__(self, "w_hpf", float(self.w_hpf))
        problems = []
        if (
            not isinstance(self.img_size, int)
            or self.img_size < 32
            or self.img_size & (self.img_size - 1)
        ):
            problems.append(f"img_size={self.img_size!r} must be a power of two >= 32")
        for field in ("style_dim", "latent_dim", "num_domains", "max_conv_dim"):
            value = getattr(self, field)
            if not isinstance(value, int) or value < 1:
                problems.append(f"{field}={value!r} must be a positive integer")
        if self.dim_in is not None and (not isinstance(self.dim_in, int) or self.dim_in < 1):
            problems.append(f"dim_in={self.dim_in!r} must be a positive integer or None")
        if self.decoder not in DECODERS:
            problems.append(f"decoder={self.decoder!r} must be one of {', '.join(DECODERS)}")
        if self.w_hpf < 0:
            problems.append(f"w_hpf={self.w_hpf} must be >= 0")
        if len(names) != self.num_domains:
            problems.append(
                f"domain_names has {len(names)} names ({','.join(names)}) for "
                f"num_domains={self.num_domains}"
            )
        if len(set(names)) != len(names):
            problems.append(f"domain_names ({','.join(names)}) are not distinct")
        if problems:
            raise ValueError("Invalid model config: " + "; ".join(problems) + ".")

    @property
    def resolved_dim_in(self):
        """dim_in, with None resolved to the official 2**14 // img_size."""
        return 2**14 // self.img_size if self.dim_in is None else self.dim_in

    def to_dict(self):
        d = dataclasses.asdict(self)
        d["domain_names"] = list(self.domain_names)
        return d

    @classmethod
    def from_dict(cls, d):
        """Builds a config from `to_dict()` output; unknown keys are an error."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"Unknown model config keys: {', '.join(unknown)}.")
        d = dict(d)
        if "domain_names" in d:
            d["domain_names"] = tuple(d["domain_names"])
        return cls(**d)


# The architecture fields a command line may state (or leave to be inferred); the domain names
# are a list flag of their own.
MODEL_FIELDS = tuple(f.name for f in dataclasses.fields(ModelConfig) if f.name != "domain_names")
