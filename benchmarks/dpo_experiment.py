"""Compare negative strategies for the DPO stage over seeds on one dataset: `rodpo-experiment`, with the experiment folder
results/dpo_<dataset> unless --out names another (the folders of the committed comparison).

Usage: python benchmarks/dpo_experiment.py --dataset scientific --seeds 0,1,2 [--out results/dpo_scientific] \
           [--strategies continue,random,popularity,hard,topk_stochastic,dns] [--betas 0.1,1] [--dpo '{"beta": 0.1}'] [--sampler '{"K": 50}'] \
           [--model '{}'] [--sweep K=1,5,10,20,50,100,200 --sweep beta=0.01,0.1,1] [--sweep-only] [--no-summary]
Every option: `rodpo-experiment --help`.
"""
from rodpo.experiment import main

if __name__ == "__main__":
    main(out_default="results/dpo_{dataset}")
