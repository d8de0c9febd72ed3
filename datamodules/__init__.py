"""One LightningDataModule per e-commerce data set, plus `text_file` for the user's own files."""
