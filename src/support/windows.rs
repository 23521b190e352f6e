//! Windows' own file security, for what Unix does with owners and modes: a file's security
//! descriptor (who may read a key file, decided by [`super::security::foreign_file_access`])
//! and account names for the messages.

use std::fs::File;
use std::io;
use std::os::windows::io::AsRawHandle;

use windows_sys::Win32::Foundation::HANDLE;
use windows_sys::Win32::Security::{
    DACL_SECURITY_INFORMATION, GetKernelObjectSecurity, LookupAccountSidW,
    OWNER_SECURITY_INFORMATION, SID_NAME_USE,
};

use super::security::Sid;

/// The owner and DACL of an open file, as a self-relative security descriptor: read from the
/// handle, so that the file checked is the file read.
#[allow(
    unsafe_code,
    reason = "GetKernelObjectSecurity has no safe wrapper; the buffer is sized by its first call"
)]
pub(crate) fn descriptor_of(file: &File) -> io::Result<Vec<u8>> {
    let handle = file.as_raw_handle() as HANDLE;
    let info = OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION;
    let mut needed = 0u32;
    // SAFETY: a null buffer of length 0 asks for the size only; `needed` is a valid u32.
    unsafe { GetKernelObjectSecurity(handle, info, std::ptr::null_mut(), 0, &mut needed) };
    if needed == 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buffer = vec![0u8; needed as usize];
    // SAFETY: `buffer` holds `needed` writable bytes, the length passed.
    let ok = unsafe {
        GetKernelObjectSecurity(
            handle,
            info,
            buffer.as_mut_ptr().cast(),
            needed,
            &mut needed,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(buffer)
}

/// `DOMAIN\name` of the account `sid` names, when this machine can tell.
#[allow(
    unsafe_code,
    reason = "LookupAccountSidW has no safe wrapper; both buffers are sized by the call"
)]
pub(crate) fn account_name(sid: &Sid) -> Option<String> {
    let bytes = sid.to_bytes();
    let mut name = vec![0u16; 256];
    let mut domain = vec![0u16; 256];
    let (mut name_len, mut domain_len) = (name.len() as u32, domain.len() as u32);
    let mut kind: SID_NAME_USE = 0;
    // SAFETY: `bytes` is a valid binary SID; the buffers hold the lengths passed, which the
    // call updates to what it wrote (without the terminating NUL).
    let ok = unsafe {
        LookupAccountSidW(
            std::ptr::null(),
            bytes.as_ptr() as *mut _,
            name.as_mut_ptr(),
            &mut name_len,
            domain.as_mut_ptr(),
            &mut domain_len,
            &mut kind,
        )
    };
    if ok == 0 {
        return None;
    }
    let name = String::from_utf16_lossy(&name[..name_len as usize]);
    let domain = String::from_utf16_lossy(&domain[..domain_len as usize]);
    Some(if domain.is_empty() {
        name
    } else {
        format!("{domain}\\{name}")
    })
}

/// How one of the tool's own files is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Create {
    /// A new file to write (a temporary file renamed over the real one).
    New,
    /// Appended to, created when missing (undo file, audit log).
    Append,
    /// Read and written, created when missing (the state's lock).
    ReadWrite,
}

/// Only the owner (OWNER RIGHTS), SYSTEM and the Administrators, nothing inherited: what Unix
/// gets with mode 0600.
const PRIVATE_SDDL: &str = "D:P(A;;FA;;;OW)(A;;FA;;;SY)(A;;FA;;;BA)";

/// Opens `path` as `how` says; a file it creates gets a protected DACL of the owner, SYSTEM and
/// the Administrators from the start (an existing file keeps its own).
#[allow(
    unsafe_code,
    reason = "CreateFileW with a security descriptor has no safe wrapper; the descriptor lives until the call returns"
)]
pub(crate) fn open_private(path: &std::path::Path, how: Create) -> io::Result<File> {
    use std::os::windows::ffi::OsStrExt;
    use std::os::windows::io::FromRawHandle;
    use windows_sys::Win32::Foundation::{
        GENERIC_READ, GENERIC_WRITE, INVALID_HANDLE_VALUE, LocalFree,
    };
    use windows_sys::Win32::Security::Authorization::{
        ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
    };
    use windows_sys::Win32::Security::SECURITY_ATTRIBUTES;
    use windows_sys::Win32::Storage::FileSystem::{
        CREATE_NEW, CreateFileW, FILE_APPEND_DATA, FILE_ATTRIBUTE_NORMAL, FILE_READ_ATTRIBUTES,
        FILE_SHARE_DELETE, FILE_SHARE_READ, FILE_SHARE_WRITE, FILE_WRITE_ATTRIBUTES, OPEN_ALWAYS,
        READ_CONTROL, SYNCHRONIZE,
    };
    let wide: Vec<u16> = path.as_os_str().encode_wide().chain([0]).collect();
    let sddl: Vec<u16> = PRIVATE_SDDL.encode_utf16().chain([0]).collect();
    let mut descriptor = std::ptr::null_mut();
    // SAFETY: `sddl` is NUL-terminated; the descriptor is freed below with LocalFree.
    let converted = unsafe {
        ConvertStringSecurityDescriptorToSecurityDescriptorW(
            sddl.as_ptr(),
            SDDL_REVISION_1,
            &mut descriptor,
            std::ptr::null_mut(),
        )
    };
    if converted == 0 {
        return Err(io::Error::last_os_error());
    }
    let attributes = SECURITY_ATTRIBUTES {
        nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
        lpSecurityDescriptor: descriptor,
        bInheritHandle: 0,
    };
    let (access, disposition) = match how {
        Create::New => (GENERIC_WRITE | READ_CONTROL, CREATE_NEW),
        Create::Append => (
            FILE_APPEND_DATA
                | FILE_WRITE_ATTRIBUTES
                | FILE_READ_ATTRIBUTES
                | READ_CONTROL
                | SYNCHRONIZE,
            OPEN_ALWAYS,
        ),
        Create::ReadWrite => (GENERIC_READ | GENERIC_WRITE, OPEN_ALWAYS),
    };
    // SAFETY: `wide` is NUL-terminated; `attributes` and the descriptor it points to outlive
    // the call; the handle returned is owned by the File made from it.
    let handle = unsafe {
        CreateFileW(
            wide.as_ptr(),
            access,
            FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
            &attributes,
            disposition,
            FILE_ATTRIBUTE_NORMAL,
            std::ptr::null_mut(),
        )
    };
    let opened = if handle == INVALID_HANDLE_VALUE {
        Err(io::Error::last_os_error())
    } else {
        // SAFETY: a valid handle that nothing else owns.
        Ok(unsafe { File::from_raw_handle(handle as _) })
    };
    // SAFETY: allocated by ConvertStringSecurityDescriptorToSecurityDescriptorW.
    unsafe { LocalFree(descriptor) };
    opened
}

/// A string value under `HKEY_LOCAL_MACHINE\{subkey}`, when it is there and not empty.
#[allow(
    unsafe_code,
    reason = "RegGetValueW has no safe wrapper; the buffer is sized by its first call"
)]
pub(crate) fn machine_string(subkey: &str, value: &str) -> Option<String> {
    use windows_sys::Win32::Foundation::ERROR_SUCCESS;
    use windows_sys::Win32::System::Registry::{HKEY_LOCAL_MACHINE, RRF_RT_REG_SZ, RegGetValueW};
    let subkey: Vec<u16> = subkey.encode_utf16().chain([0]).collect();
    let value: Vec<u16> = value.encode_utf16().chain([0]).collect();
    let mut bytes = 0u32;
    // SAFETY: both names are NUL-terminated; a null buffer asks for the size in bytes.
    let sized = unsafe {
        RegGetValueW(
            HKEY_LOCAL_MACHINE,
            subkey.as_ptr(),
            value.as_ptr(),
            RRF_RT_REG_SZ,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &mut bytes,
        )
    };
    if sized != ERROR_SUCCESS || bytes < 2 {
        return None;
    }
    let mut buffer = vec![0u16; (bytes as usize).div_ceil(2)];
    // SAFETY: `buffer` holds `bytes` bytes, the length passed; the call NUL-terminates.
    let read = unsafe {
        RegGetValueW(
            HKEY_LOCAL_MACHINE,
            subkey.as_ptr(),
            value.as_ptr(),
            RRF_RT_REG_SZ,
            std::ptr::null_mut(),
            buffer.as_mut_ptr().cast(),
            &mut bytes,
        )
    };
    if read != ERROR_SUCCESS {
        return None;
    }
    let text = String::from_utf16_lossy(&buffer);
    let text = text.trim_end_matches('\0').trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// The names of the keys under `HKEY_LOCAL_MACHINE\{subkey}` (empty when it is not there).
#[allow(
    unsafe_code,
    reason = "RegOpenKeyExW / RegEnumKeyExW have no safe wrapper; the key is closed before return"
)]
pub(crate) fn machine_subkeys(subkey: &str) -> Vec<String> {
    use windows_sys::Win32::Foundation::ERROR_SUCCESS;
    use windows_sys::Win32::System::Registry::{
        HKEY, HKEY_LOCAL_MACHINE, KEY_READ, RegCloseKey, RegEnumKeyExW, RegOpenKeyExW,
    };
    let subkey: Vec<u16> = subkey.encode_utf16().chain([0]).collect();
    let mut key: HKEY = std::ptr::null_mut();
    // SAFETY: `subkey` is NUL-terminated; `key` receives an open key, closed below.
    if unsafe { RegOpenKeyExW(HKEY_LOCAL_MACHINE, subkey.as_ptr(), 0, KEY_READ, &mut key) }
        != ERROR_SUCCESS
    {
        return Vec::new();
    }
    let mut names = Vec::new();
    // A machine has a few dozen interfaces at most; the bound keeps a broken registry finite.
    for index in 0..1024 {
        let mut name = [0u16; 256];
        let mut len = name.len() as u32;
        // SAFETY: `name` holds `len` u16s; class and time are optional and null.
        let status = unsafe {
            RegEnumKeyExW(
                key,
                index,
                name.as_mut_ptr(),
                &mut len,
                std::ptr::null(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        if status != ERROR_SUCCESS {
            break;
        }
        names.push(String::from_utf16_lossy(&name[..len as usize]));
    }
    // SAFETY: `key` was opened above and is closed once.
    unsafe { RegCloseKey(key) };
    names
}

/// Stops Windows from failing the next receive on a UDP socket with WSAECONNRESET after an
/// ICMP "port unreachable" (SIO_UDP_CONNRESET off): a server that is not there then reads as
/// silence, as it does to an unconnected socket elsewhere, instead of poisoning the socket's
/// later receives (and, under wine 8, waking its reader without end).
#[allow(
    unsafe_code,
    reason = "WSAIoctl has no safe wrapper; the in-buffer is a 4-byte BOOL that outlives the call"
)]
pub(crate) fn ignore_udp_resets(socket: &impl std::os::windows::io::AsRawSocket) -> io::Result<()> {
    use windows_sys::Win32::Networking::WinSock::{SIO_UDP_CONNRESET, SOCKET, WSAIoctl};
    let off: u32 = 0;
    let mut returned = 0u32;
    // SAFETY: a valid socket; `off` is the 4-byte BOOL the code takes; no output, no overlap.
    let status = unsafe {
        WSAIoctl(
            socket.as_raw_socket() as SOCKET,
            SIO_UDP_CONNRESET,
            (&raw const off).cast(),
            4,
            std::ptr::null_mut(),
            0,
            &mut returned,
            std::ptr::null_mut(),
            None,
        )
    };
    if status == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Lets the console show colours written as escape sequences (VT processing), where it can:
/// Windows 10 and later. Returns whether it can; without it colours must not be written.
#[allow(
    unsafe_code,
    reason = "GetConsoleMode / SetConsoleMode have no safe wrapper; the handle is the process's own"
)]
pub fn enable_virtual_terminal() -> bool {
    use windows_sys::Win32::System::Console::{
        ENABLE_VIRTUAL_TERMINAL_PROCESSING, GetConsoleMode, GetStdHandle, STD_OUTPUT_HANDLE,
        SetConsoleMode,
    };
    // SAFETY: the standard output handle of this process; the mode is a plain u32.
    unsafe {
        let out = GetStdHandle(STD_OUTPUT_HANDLE);
        let mut mode = 0;
        if GetConsoleMode(out, &mut mode) == 0 {
            return false;
        }
        mode & ENABLE_VIRTUAL_TERMINAL_PROCESSING != 0
            || SetConsoleMode(out, mode | ENABLE_VIRTUAL_TERMINAL_PROCESSING) != 0
    }
}
