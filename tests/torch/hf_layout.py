"""tests/torch/hf_layout.py — runs a reference script of tests/torch/ but
writes its weights the way a Hugging Face checkpoint stores them (fused,
transposed, interleaved or per-expert tensors under Hugging Face's names):
the math and the expected outputs are the script's own, only the file
changes, so the .tfx must bind the checkpoint as saved through its `rename`
block (issue #14).

run(module, outdir, repack): calls module.main(outdir) with its write_case
replaced by one that passes the weights through repack({tfx name: tensor})
-> {file name: tensor} first.
"""
import common


def run(module, outdir, repack):
    def write_case(out, weights, inputs, expected, causal):
        common.write_case(out, repack(dict(weights)), inputs, expected, causal)
    module.write_case = write_case
    module.main(outdir)
