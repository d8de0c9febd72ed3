"""The analysis room: runs side by side (`compare`), the HTML report (`report`), optuna-dashboard
(`dashboard`), and unsupervised review anomalies (`anomaly`)."""
