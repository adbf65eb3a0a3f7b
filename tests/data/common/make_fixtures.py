#!/usr/bin/python3
"""Regenerates the small .npy fixtures used by tests/unit/common/npy_test.cc (numpy writes them,
so the tests check compatibility with the real implementation, not only with our own writer)."""
import os
import numpy as np
from numpy.lib import format as npf

here = os.path.dirname(os.path.abspath(__file__))
a = np.arange(6, dtype=np.float32).reshape(2, 3)


def save(name, arr, version=None):
    with open(os.path.join(here, name), "wb") as f:
        npf.write_array(f, arr, version=version)


save("c_f4_2x3.npy", a)
save("fortran_f4_2x3.npy", np.asfortranarray(a))
save("fortran_i2_2x3x4.npy", np.asfortranarray(np.arange(24, dtype=np.int16).reshape(2, 3, 4)))
save("bigendian_i4_2x3.npy", a.astype(">i4"))
save("v2_f8_2x3.npy", a.astype(np.float64), version=(2, 0))
save("v3_u2_2x3.npy", a.astype(np.uint16), version=(3, 0))
save("bool_3.npy", np.array([True, False, True]))
save("scalar_i8.npy", np.array(-7, dtype=np.int64))
save("empty_f2_0x3.npy", np.zeros((0, 3), dtype=np.float16))
