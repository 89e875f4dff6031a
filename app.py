"""Segmentation Loss Explorer: the page. Layout and widgets only; everything else lives in
explorer/ (models, losses and tf.functions must not be redefined on every rerun)."""

import streamlit as st

st.set_page_config(page_title="Segmentation Loss Explorer", page_icon="🧩", layout="wide")
st.title("Segmentation Loss Explorer")
st.caption("Train a small U-Net on deliberately imbalanced data and watch what each loss does to the rare classes.")

with st.spinner("Loading TensorFlow (a few seconds, once per server)…"):
    from explorer.training import describe_device
    from explorer.ui import (
        capacity,
        compare_view,
        dataset_view,
        export_view,
        link,
        loss_view,
        session,
        sidebar,
        surfaces_view,
        training_view,
        traps_view,
        upload_view,
    )
    from explorer.ui.streamlit_internals import keep_keras_state

    keep_keras_state()  # before the first script run ends: see explorer/ui/streamlit_internals.py

try:
    capacity.slots()
except ValueError as error:  # a misconfigured server: say what to set rather than fail later
    st.error(str(error), icon=":material/settings:")
    st.stop()

session.mark_full_run()
# The user's image–mask pairs when "Train on these images" is on, else the toy dataset.
dataset = upload_view.active_dataset() or session.toy_dataset()
counts = upload_view.active_counts() or session.toy_counts()
upload_view.drop_runs_on_other_data(dataset)
link.apply(counts)  # a shared link fills the sidebar's widgets before they exist
configs, settings = sidebar.settings(dataset, counts)
runs = session.sync_runs(configs, dataset)

dataset_view.show(dataset, counts)
upload_view.show(runs)

st.header("Training")
loss_view.show(runs)
st.caption(f"Training on {describe_device()}. All runs start from the same weights and see the same batches.")
training_view.controls(settings)
training_view.live(dataset, settings)

surfaces_view.show(dataset, counts)
compare_view.show(dataset, counts)
traps_view.show(session.toy_dataset())
export_view.show(runs, configs, settings, counts)
training_view.warm_up()
