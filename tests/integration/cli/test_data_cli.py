"""Data mistakes on the command line: label warnings, --strict-labels, the rising-validation-loss hint."""

from tests.integration.cli.test_cli import zoo


def yes_no_csv(tmp_path):
    rows = ["a,b,label"] + [f"{i % 9},{(i * 7) % 5},{'yes' if i % 2 else 'no'}" for i in range(60)] + ["3,4,Yes"]
    (tmp_path / "yn.csv").write_text("\n".join(rows) + "\n")


def test_label_variants_warn_and_strict_labels_refuses(tmp_path):
    yes_no_csv(tmp_path)
    p = zoo("train", "--data", "yn.csv", "--target", "label", "--epochs", "2", "-q", cwd=tmp_path)
    assert "warning: " in p.stderr and "labels 'yes' (30 rows), 'Yes' (1 row) differ only by case" in p.stderr
    assert "--strict-labels makes this an error" in p.stderr
    p = zoo("train", "--data", "yn.csv", "--target", "label", "--strict-labels", "-q", cwd=tmp_path, check=False)
    assert p.returncode == 1 and "error: " in p.stderr and "differ only by case" in p.stderr and "Traceback" not in p.stderr
    assert len(list((tmp_path / "runs" / "yn").iterdir())) == 1  # the refused run wrote nothing


def test_training_output_names_the_best_epoch_and_hints_at_patience(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    rows = ["a,b,c,label"] + [f"{x[0]},{x[1]},{x[2]},{rng.integers(2)}" for x in rng.normal(size=(300, 3))]
    (tmp_path / "noise.csv").write_text("\n".join(rows) + "\n")
    args = ["train", "--data", "noise.csv", "--target", "label", "--hidden", "128", "--lr", "0.01", "--batch-size", "16", "-q"]
    p = zoo(*args, "--epochs", "40", "--val-split", "0.2", cwd=tmp_path)
    assert "(best validation loss: epoch " in p.stdout and "hint: validation loss was lowest at epoch" in p.stderr
    p = zoo(*args, "--epochs", "40", "--val-split", "0.2", "--patience", "5", cwd=tmp_path)
    assert "hint:" not in p.stderr
