"""Segmentation Loss Explorer: the page. Layout and widgets only; everything else lives in
explorer/ (models, losses and tf.functions must not be redefined on every rerun)."""

import streamlit as st

st.set_page_config(page_title="Segmentation Loss Explorer", page_icon="🧩", layout="wide")
st.title("Segmentation Loss Explorer")
st.caption("Train a small U-Net on deliberately imbalanced data and watch what each loss does to the rare classes.")

with st.spinner("Loading TensorFlow (a few seconds, once per server)…"):
    from explorer.training import describe_device
    from explorer.ui import dataset_view, loss_view, session, sidebar, training_view

session.mark_full_run()
dataset = session.toy_dataset()
counts = session.toy_counts()
configs, settings = sidebar.settings(dataset, counts)
runs = session.sync_runs(configs, dataset)

dataset_view.show(dataset, counts)
st.header("Training")
loss_view.show(runs)
st.caption(f"Training on {describe_device()}. All runs start from the same weights and see the same batches.")
training_view.controls(settings)
training_view.live(dataset, settings)
