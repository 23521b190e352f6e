/* Test bed only, never shipped: wine 8 has no bcryptprimitives.dll, whose ProcessPrng Rust's
 * standard library (1.78 and later) takes its random numbers from; without it the exe exits at
 * once with status 53. Real Windows (10 and later) has the DLL. This one fills the buffer
 * through advapi32's RtlGenRandom (SystemFunction036), as the DLL does on Windows.
 * Built by scripts/windows: x86_64-w64-mingw32-gcc -shared -o bcryptprimitives.dll ... -ladvapi32 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG chunk = length > 0x7fffffff ? 0x7fffffff : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
