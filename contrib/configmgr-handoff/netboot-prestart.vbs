' netboot Windows PE hand-off: the boot media's prestart command.
' Sets the task sequence variables the PXE server handed to this machine, in
' X:\Windows\System32\netboot-variables.txt (UTF-16, one Name=Value per line),
' through the documented Microsoft.SMS.TSEnvironment object. Prestart commands run
' before the task sequence policy is downloaded, so SMSTSPreferredAdvertID and
' OSDComputerName set here steer that boot.
Option Explicit
Dim fso, env, path, file, line, at
Set fso = CreateObject("Scripting.FileSystemObject")
path = fso.BuildPath(fso.GetSpecialFolder(1), "netboot-variables.txt")
If Not fso.FileExists(path) Then WScript.Quit 0
Set env = CreateObject("Microsoft.SMS.TSEnvironment")
' 1 = ForReading, False = do not create, -1 = Unicode (UTF-16LE)
Set file = fso.OpenTextFile(path, 1, False, -1)
Do Until file.AtEndOfStream
  line = file.ReadLine
  at = InStr(line, "=")
  If at > 1 Then env(Left(line, at - 1)) = Mid(line, at + 1)
Loop
file.Close
WScript.Quit 0
