#!/usr/bin/env python3
"""Print each SASS instruction of a Hopper (sm_90) kernel with its scheduling control bits.

    cuobjdump -sass build/fused/CMakeFiles/fusecheck_fused.dir/dataflow/dataflow_kernel.cu.o \\
        | tools/sass_scoreboards.py [--function NAME_PART] > kernel.txt

One line per instruction: its offset, the scoreboard its result sets (wr) and the one its operand reads
set (rd), the scoreboards it waits on before it issues (wait), its stall count, and the instruction.
Two loads with the same wr share a scoreboard: an instruction that waits on it waits for both, which is
how ptxas can make a tile's staging wait for the tile's own weight loads (fused/dataflow/NOTES.md, v11).

cuobjdump is not part of the CUDA toolkit this project installs; PyPI has it:
    pip download --no-deps -d /tmp/whl nvidia-cuda-cuobjdump && unzip -o -q /tmp/whl/*.whl -d /tmp/cuobjdump
    export PATH=/tmp/cuobjdump/nvidia/cu13/bin:$PATH

The control bits are the high word's bits 41-57 (Volta to Hopper encodings, as reverse-engineered in
"Dissecting the NVIDIA Volta GPU Architecture via Microbenchmarking", Jia et al. 2018): stall 41-44,
yield 45, write scoreboard 46-48, read scoreboard 49-51 (7: none), wait mask 52-57. `--self-test`
decodes two instructions whose bits are known and exits non-zero if the decoding disagrees.
"""
import re
import signal
import sys

INSTRUCTION = re.compile(r"\s*/\*([0-9a-f]{4,6})\*/\s*(.*?)\s*;\s*/\* (0x[0-9a-f]{16}) \*/")
HIGH_WORD = re.compile(r"\s*/\* (0x[0-9a-f]{16}) \*/\s*$")
FUNCTION = re.compile(r"\s*Function : (\S+)")


def control_bits(high):
    """(stall, yield, write scoreboard or None, read scoreboard or None, wait mask) of a high word."""
    write, read = (high >> 46) & 7, (high >> 49) & 7
    return ((high >> 41) & 0xF, (high >> 45) & 1, None if write == 7 else write, None if read == 7 else read,
            (high >> 52) & 0x3F)


def describe(offset, text, high):
    stall, _, write, read, wait = control_bits(high)
    waits = "".join(str(b) for b in range(6) if wait >> b & 1) or "-"
    return (f"{offset} wr={'-' if write is None else write} rd={'-' if read is None else read} "
            f"wait={waits:6} st={stall:2} {text}")


def decode(lines, function_part=None):
    """Yields (function, description) for each instruction of cuobjdump -sass output."""
    function, pending = None, None
    for line in lines:
        m = FUNCTION.match(line)
        if m:
            function = m.group(1)
            continue
        m = INSTRUCTION.match(line)
        if m:
            pending = (m.group(1), m.group(2))
            continue
        m = HIGH_WORD.match(line)
        if m and pending:
            if function_part is None or (function and function_part in function):
                yield function, describe(pending[0], pending[1], int(m.group(1), 16))
            pending = None


# Two instructions of a test kernel (sm_90a, nvcc 13.0): a tagged load that sets scoreboard 2, and the
# compare that reads its result, so waits on scoreboard 2 with a stall of 13.
SAMPLE = """\
        Function : k
        /*0070*/                   LDG.E.64.STRONG.GPU R26, desc[UR4][R24.64] ;            /* 0x00000004181a7981 */
                                                                                            /* 0x000ea2000c1efb00 */
        /*0160*/                   ISETP.NE.AND P0, PT, R27, UR6, PT ;                      /* 0x000000061b007c0c */
                                                                                            /* 0x004fda000bf05270 */
"""


def self_test():
    got = [d for _, d in decode(SAMPLE.splitlines())]
    want = ["0070 wr=2 rd=- wait=-      st= 1 LDG.E.64.STRONG.GPU R26, desc[UR4][R24.64]",
            "0160 wr=- rd=- wait=2      st=13 ISETP.NE.AND P0, PT, R27, UR6, PT"]
    if got != want:
        print("sass_scoreboards: self-test failed:\n  got  " + "\n  got  ".join(got) + "\n  want " +
              "\n  want ".join(want), file=sys.stderr)
        return 1
    print("sass_scoreboards: self-test passed")
    return 0


def main(argv):
    if argv[1:2] == ["--self-test"]:
        return self_test()
    function_part = None
    if argv[1:2] == ["--function"] and len(argv) == 3:
        function_part = argv[2]
    elif len(argv) > 1:
        print("usage: cuobjdump -sass FILE | sass_scoreboards.py [--function NAME_PART] | --self-test",
              file=sys.stderr)
        return 2
    count = 0
    for _, description in decode(sys.stdin, function_part):
        print(description)
        count += 1
    if count == 0:
        print("sass_scoreboards: no instructions read from standard input (expected cuobjdump -sass output)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `| head` ends the output quietly
    sys.exit(main(sys.argv))
