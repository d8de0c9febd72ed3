"""The run room: `train(cfg)` (`train`) and what it composes: one run (`single`), k folds (`folds`),
a teacher's soft labels (`teacher`), the objects of a run (`build`), scheduled pruning (`pruning`),
the task's cheap baseline (`baseline`), where the time goes (`timing`), and `reproduce`."""
