"""The Streamlit dashboard (`streamlit run dashboard/app.py`): thin pages over the lruts library."""
