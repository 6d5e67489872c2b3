"""parse_test_res.py on synthetic logs: end signals, the last match, the logs of resumed runs, --ci95,
--multi-exp, --keyword, and the errors for missing results."""
import os

import pytest

import parse_test_res

PREAMBLE = """Setting fixed seed: 1
** Config **
OPTIM:
  MAX_EPOCH: 2
epoch [1/2] batch [5/10] loss 1.2
"""


def result_block(accuracy: float, macro_f1: float = 50.0) -> str:
    return ("=> result\n* total: 2,465\n* correct: 1,000\n"
            f"* accuracy: {accuracy:.1f}%\n* error: {100 - accuracy:.1f}%\n* macro_f1: {macro_f1:.1f}%\n")


def train_log(accuracy: float, macro_f1: float = 50.0) -> str:
    """A training log: a validation result during training (ignored), then the final test."""
    return (PREAMBLE + "Evaluate on the *val* set\n" + result_block(12.5)
            + "Finish training\nDeploy the last-epoch model\nEvaluate on the *test* set\n"
            + result_block(accuracy, macro_f1) + "Elapsed: 0:01:02\n")


def eval_log(accuracy: float) -> str:
    loading = "Loading weights to prompt_learner (epoch = 2)\nEvaluate on the *test* set\n"
    return PREAMBLE + loading + result_block(accuracy)


def write(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def run(argv, capsys):
    code = parse_test_res.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_mean_and_population_std_of_training_logs(tmp_path, capsys):
    for seed, acc in zip((1, 2, 3), (90.0, 91.0, 95.0)):
        write(tmp_path / f"seed{seed}" / "log.txt", train_log(acc))
    code, out, _ = run([tmp_path], capsys)
    assert code == 0
    assert "seed1: accuracy 90.00%" in out and "seed3: accuracy 95.00%" in out
    # population std sqrt(14/3) = 2.16 (the sample std would be 2.65); the 12.5 before "Finish training" is ignored
    assert "* accuracy: 92.00% +- 2.16%" in out


def test_ci95(tmp_path, capsys):
    for seed, acc in zip((1, 2, 3), (90.0, 91.0, 95.0)):
        write(tmp_path / f"seed{seed}" / "log.txt", train_log(acc))
    code, out, _ = run([tmp_path, "--ci95"], capsys)
    assert code == 0
    assert "* accuracy: 92.00% +- 2.44%" in out  # 1.96 * 2.1602 / sqrt(3)


def test_test_log_end_signal(tmp_path, capsys):
    write(tmp_path / "seed1" / "log.txt", eval_log(77.3))
    write(tmp_path / "seed2" / "log.txt", eval_log(78.3))
    code, out, _ = run([tmp_path, "--test-log"], capsys)
    assert code == 0
    assert "* accuracy: 77.80% +- 0.50%" in out
    # without --test-log the training end signal is looked for and not found: a clear error, no summary
    code, out, err = run([tmp_path], capsys)
    assert code == 1
    assert "Summary" not in out
    assert '"Finish training"' in err and "--test-log" in err and "seed1" in err and "seed2" in err


def test_last_match_wins(tmp_path, capsys):
    write(tmp_path / "seed1" / "log.txt", eval_log(60.0) + "Evaluate on the *test* set\n" + result_block(65.0))
    code, out, _ = run([tmp_path, "--test-log"], capsys)
    assert code == 0
    assert "seed1: accuracy 65.00%" in out


def test_resumed_run_reads_the_later_logs(tmp_path, capsys):
    # an interrupted run (no end signal in log.txt) resumed into log.txt-<timestamp>
    write(tmp_path / "seed1" / "log.txt", PREAMBLE)
    write(tmp_path / "seed1" / "log.txt-2024-01-02-10-00-00", train_log(81.0))
    # a finished run tested again later: the latest result wins
    write(tmp_path / "seed2" / "log.txt", train_log(70.0))
    write(tmp_path / "seed2" / "log.txt-2024-01-03-09-00-00", train_log(75.0))
    write(tmp_path / "seed2" / "log.txt-2024-01-02-09-00-00", train_log(72.0))
    code, out, _ = run([tmp_path], capsys)
    assert code == 0
    assert "seed1: accuracy 81.00%" in out
    assert "seed2: accuracy 75.00%" in out


def test_keyword(tmp_path, capsys):
    write(tmp_path / "seed1" / "log.txt", train_log(90.0, macro_f1=88.4))
    code, out, _ = run([tmp_path, "--keyword", "macro_f1"], capsys)
    assert code == 0
    assert "* macro_f1: 88.40% +- 0.00%" in out


def test_multi_exp(tmp_path, capsys):
    for exp, accs in (("caltech101", (90.0, 92.0)), ("dtd", (80.0, 80.0))):
        for seed, acc in enumerate(accs, 1):
            write(tmp_path / exp / f"seed{seed}" / "log.txt", eval_log(acc))
    os.makedirs(tmp_path / ".hidden" / "seed1")  # hidden folders are not experiments
    code, out, _ = run([tmp_path, "--test-log", "--multi-exp"], capsys)
    assert code == 0
    assert "* accuracy: 91.00% +- 1.00%" in out
    assert "* accuracy: 80.00% +- 0.00%" in out
    assert out.strip().endswith("Average performance\n* accuracy: 85.50%")


def test_missing_log_and_missing_folders(tmp_path, capsys):
    write(tmp_path / "seed1" / "log.txt", eval_log(50.0))
    os.makedirs(tmp_path / "seed2")
    code, _, err = run([tmp_path, "--test-log"], capsys)
    assert code == 1
    assert "seed2: no log.txt" in err

    code, _, err = run([tmp_path / "nowhere"], capsys)
    assert code == 1
    assert "no such folder" in err

    os.makedirs(tmp_path / "empty")
    code, _, err = run([tmp_path / "empty"], capsys)
    assert code == 1
    assert "no run folders" in err


@pytest.mark.parametrize("lines,expected", [
    (["* accuracy: 50.0%", "Finish training", "* accuracy: 1e1%"], 10.0),
    (["Finish training", "* accuracy: 93.7%", "* accuracy: 94.1%"], 94.1),
    (["* accuracy: 93.7%"], None),
])
def test_parse_lines(lines, expected):
    assert parse_test_res.parse_lines(lines, parse_test_res.END_SIGNAL_TRAIN, "accuracy") == expected
