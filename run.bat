@echo off
rem Windows: set up (first time) and start the app at http://127.0.0.1:8000 - the same steps as run.sh.
rem Uses Ollama's llama3.1 when Ollama is running, else the small built-in model (which needs a C++
rem compiler to install; without one the app is installed without it and needs Ollama).
cd /d "%~dp0"
if not exist .venv\Scripts\python.exe (py -3.11 -m venv .venv || python -m venv .venv)
.venv\Scripts\python -c "import agent, chainlit" 2>nul
if errorlevel 1 (
  echo Installing - the first time takes a few minutes.
  echo [1/3] pip...
  .venv\Scripts\python -m pip install -q --upgrade pip
  echo [2/3] the app - about 170 libraries, 1-2 minutes...
  .venv\Scripts\python -m pip install -q -e . || exit /b 1
  echo [3/3] the built-in model - compiles llama.cpp, about 8 minutes...
  .venv\Scripts\python -m pip install -q -e ".[local]" || echo The built-in model could not be installed ^(it needs a C++ compiler^): the app starts without it and uses Ollama.
)
.venv\Scripts\python -m agent serve --open %*
