@echo off
rem Windows: set up (first time) and start the app at http://127.0.0.1:8000 - the same steps as run.sh.
rem Uses Ollama's llama3.1 when Ollama is running, else the small built-in model (which needs a C++
rem compiler to install; without one the app is installed without it and needs Ollama).
cd /d "%~dp0"
if not exist .venv\Scripts\python.exe (py -3.11 -m venv .venv || python -m venv .venv)
.venv\Scripts\python -c "import agent, chainlit" 2>nul
if errorlevel 1 (
  echo Installing the pinned dependencies...
  .venv\Scripts\python -m pip install --upgrade pip
  .venv\Scripts\python -m pip install -e ".[local]" || .venv\Scripts\python -m pip install -e .
)
.venv\Scripts\chainlit run app.py --host 127.0.0.1 --port 8000 --headless %*
