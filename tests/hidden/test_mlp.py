import importlib, itertools, operator, io, functools
import torch
from torch import nn

def test_x(student):
    p = student.init_mlp_params(4, 3, 2)
    mod = student.remote(importlib.import_module, "mlp")
    print(mod)
    f = mod.init_mlp_params
    print(f)
    lazy = student.remote(map, f, [4], [3], [2])
    chain = student.remote(itertools.chain.from_iterable, lazy)
    flags = student.remote(list, student.remote(map, operator.attrgetter("is_leaf"), chain))
    print(flags)
    buf = student.remote(io.StringIO)
    net = student.remote(nn.Sequential, nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    net[2].register_forward_pre_hook(functools.partial(print, file=buf))
    net(torch.randn(2, 4))
    with torch.no_grad():
        pass
    print(buf.getvalue())
