@echo off
rem netboot Windows PE hand-off, run by winpeshl.ini before TsBootShell.exe.
rem wimboot injected the site's boot media files into X:\Windows\System32; ConfigMgr's
rem boot media keeps them in \SMS\data, where TsBootShell.exe and TsmBootstrap.exe look.
rem The copies in System32 are removed: only \SMS\data holds the media certificate.
setlocal
set "DATA=%SYSTEMDRIVE%\sms\data"
if not exist "%DATA%" mkdir "%DATA%"
for %%F in (TSMBootstrap.ini variables.dat) do (
  if exist "%SystemRoot%\System32\%%F" (
    copy /y "%SystemRoot%\System32\%%F" "%DATA%\%%F" >nul
    del /f /q "%SystemRoot%\System32\%%F"
  )
)
exit /b 0
