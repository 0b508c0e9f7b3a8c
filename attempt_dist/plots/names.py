"""Display names, in the paper's spelling and order."""

METHOD_LABELS = {"finetune": "Fine-tuning", "prompt": "Prompt tuning", "adapter": "Adapter",
                 "attempt": "ATTEMPT (ours)", "bitfit": "BitFit", "spot": "SPoT"}
METHOD_SHORT = {"finetune": "FT", "adapter": "Adapter", "bitfit": "BitFit", "prompt": "PT",
                "spot": "SPoT", "spot-g": "SPoT-g", "spot-t": "SPoT-t", "attempt": "ATTEMPT"}
METHOD_ORDER = ["finetune", "adapter", "bitfit", "prompt", "spot", "spot-g", "spot-t", "attempt"]
TASK_LABELS = {
    "wnli": "WNLI", "stsb": "STS-B", "mrpc": "MRPC", "rte": "RTE", "multirc": "MultiRC",
    "boolq": "BoolQ", "wic": "WiC", "wsc": "WSC", "cb": "CB", "copa": "COPA", "cola": "CoLA",
    "nq": "NQ", "hotpotqa": "HP", "searchqa": "SQA", "newsqa": "News", "winogrande": "WG",
    "yelp": "Yelp", "scitail": "SciTail", "paws": "PAWS", "mnli": "MNLI", "sst2": "SST-2",
    "qqp": "QQP", "qnli": "QNLI", "squad": "SQuAD", "record": "ReCoRD", "target": "target",
}
# Figure 5's rows follow the paper's tables; Figure 4 puts BoolQ, MultiRC, WiC first.
TASK_ORDER = ["wnli", "stsb", "mrpc", "rte", "multirc", "boolq", "wic", "wsc", "cb", "copa", "cola",
              "nq", "hotpotqa", "searchqa", "newsqa", "winogrande", "yelp", "scitail", "paws"]
SCALING_TASKS = ["boolq", "multirc", "wic"]


def task_label(task: str) -> str:
    return TASK_LABELS.get(task, task)


def method_label(variant: str) -> str:
    return METHOD_LABELS.get(variant, variant)


def order_tasks(tasks, first=()) -> list[str]:
    tasks = set(tasks)
    head = [t for t in first if t in tasks]
    rest = [t for t in TASK_ORDER if t in tasks and t not in head]
    return head + rest + sorted(tasks - set(head) - set(rest))


def order_methods(methods) -> list[str]:
    methods = set(methods)
    return [m for m in METHOD_ORDER if m in methods] + sorted(methods - set(METHOD_ORDER))
