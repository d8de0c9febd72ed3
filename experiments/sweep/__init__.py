"""The sweep room: the sweep file (`file`, with W&B's spelling in `wandb_spelling`), the search space
(`space`), sampler and pruner (`search`), the claim and budget (`claim`), the study (`study`), one
trial (`objective`), a worker process (`worker`, with its DDP ranks in `rank_group`), the monitor and
live view (`monitor`), and what a finished study says (`summary`)."""
