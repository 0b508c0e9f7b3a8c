"""The terminal: plain progress lines when stdout is not a terminal, dev score lines."""

from attempt_dist.training.progress import RunProgress, score_line


def test_plain_lines_every_tenth_of_the_steps_and_one_per_evaluation(capsys):
    with RunProgress(enabled=True, live=False) as progress:
        progress.start_training(20, 0)
        for step in range(1, 21):
            progress.train_step(step, loss=1.0 / step, examples_per_s=8.0)
        progress.eval_start("dev", 3)
        for _ in range(3):
            progress.eval_advance()
        progress.eval_end()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "train: 0/20 steps done, 20 to go"
    train = [line for line in lines if line.startswith("train step")]
    assert [line.split()[2] for line in train] == [f"{s}/20" for s in range(2, 21, 2)]
    assert train[-1].startswith("train step 20/20 (100%)  loss 0.0500  8.0 ex/s  elapsed 0:00:0")
    assert [line for line in lines if line.startswith("eval")] == ["eval dev: 3 batches in 0:00:00"]


def test_a_resumed_run_counts_from_its_step_and_other_ranks_print_nothing(capsys):
    progress = RunProgress(enabled=True, live=False)
    progress.start_training(10, 6)
    progress.train_step(7, loss=0.5, examples_per_s=1.0)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "train: 6/10 steps done, 4 to go" and out[1].startswith("train step 7/10 (70%)")
    quiet = RunProgress(enabled=False, live=False)
    quiet.start_training(10, 0)
    quiet.train_step(1, loss=0.5, examples_per_s=1.0)
    quiet.note("dev at step 1")
    assert capsys.readouterr().out == ""


def test_score_line():
    metrics = {"rte": {"accuracy": 71.2}, "cb": {"accuracy": 80.0, "f1_macro": 62.5}}
    assert score_line("dev", 10, 75.6, metrics) == \
        "dev at step 10: 75.60 (rte accuracy 71.20; cb accuracy 80.00, f1_macro 62.50)"
