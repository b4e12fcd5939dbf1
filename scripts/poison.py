#!/usr/bin/env python3
"""Scales the weights of an iotegrity linear model file (safetensors) by a factor, in place: the
demo's poisoned participant. Usage: scripts/poison.py FILE FACTOR"""
import json, struct, sys

path, factor = sys.argv[1], float(sys.argv[2])
data = bytearray(open(path, "rb").read())
(n,) = struct.unpack_from("<Q", data, 0)
header = json.loads(data[8 : 8 + n])
start, end = header["weights"]["data_offsets"]
base = 8 + n
for off in range(base + start, base + end, 8):
    (v,) = struct.unpack_from("<d", data, off)
    struct.pack_into("<d", data, off, v * factor)
open(path, "wb").write(bytes(data))
