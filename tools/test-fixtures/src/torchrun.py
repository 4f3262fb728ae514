# torchrun (`python3 torchrun.py ARGS` is `torchrun ARGS`), for machines where the `torchrun` script is not on PATH.
# Debian's torch 1.13 on Python 3.11 cannot parse its own default `--redirects 0` (Std.from_str compares an Enum
# with an int and gets None); where that is so, a working parser replaces it before torchrun starts.
import sys

import torch.distributed.elastic.multiprocessing.api as api

if api.Std.from_str("0") is None:

    def from_str(cls, vm):
        if ":" not in vm:
            return cls(int(vm))
        return {int(i): cls(int(v)) for i, v in (m.split(":") for m in vm.split(","))}

    api.Std.from_str = classmethod(from_str)

from torch.distributed.run import main

sys.argv[0] = "torchrun"
sys.exit(main())
