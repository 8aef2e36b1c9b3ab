"""Training: the loop, its options, the PGAE growth schedule, run records and sheets.

    from featurechanger.training.loop import train
    from featurechanger.training.options import TrainOptions   # imports no torch
    run_id = train(TrainOptions(model="dcae", data="shards/"), settings)
"""
